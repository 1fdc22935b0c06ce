"""What the matcher does with each batch of records: `mail` (the mailbox's single writer) and
`facts` (CRM projections, accounts, settings; it asks `mail` to re-check what they affect)."""

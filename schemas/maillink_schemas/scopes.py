"""Token scopes: what a caller may do. The identity provider grants them; services check them.

A scope never widens who the caller is: the acting user always comes from the token's
`user_id` claim, and no scope (an admin one included) reveals another user's private mail.
"""
from enum import StrEnum


class Scope(StrEnum):
    ACCOUNTS_READ = "accounts:read"     # read the status of one's own mailbox accounts
    ACCOUNTS_WRITE = "accounts:write"   # connect, change, pause, remove one's own accounts
    ACCOUNTS_ADMIN = "accounts:admin"   # a CRM service manages the accounts of its company's users
    MAIL_READ = "mail:read"             # the query API, as the acting user sees it
    MAIL_WRITE = "mail:write"           # link, unlink, delete, change visibility
    BLOBS_READ = "blobs:read"           # raw MIME by id, for trusted services (users get signed links)
    SETTINGS_READ = "settings:read"
    TRACKING_READ = "tracking:read"     # open/click stats of one's own sent messages
    SETTINGS_WRITE = "settings:write"   # one's own mail settings (blocklist, sharing default, linking mode, ...)
    SETTINGS_ADMIN = "settings:admin"   # the company-wide blocklist of the token's company
    MAIL_SEND = "mail:send"             # send (and cancel) mail from one's own accounts
    TEMPLATES_READ = "templates:read"   # one's own and the company's shared templates, one's signatures
    TEMPLATES_WRITE = "templates:write" # create, change, delete one's templates and signatures
    BCC_READ = "bcc:read"               # one's company Smart Bcc address and one's alternative addresses
    BCC_WRITE = "bcc:write"             # add or remove one's own alternative sending addresses

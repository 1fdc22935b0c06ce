"""maillink's contracts: the only code every service shares.

Events are facts in the past tense, commands are orders. Within a topic version only optional
fields are ever added, and every model ignores fields it does not know.
"""

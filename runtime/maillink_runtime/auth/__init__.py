"""Who is calling, and what they may do: signed service tokens (JWT, asymmetric keys, a JWKS
selected by `kid`), the one list of public routes, and short-lived signed links to raw MIME.

Services only ever hold public keys; the token issuer (the CRM's identity provider, or
`maillink token` locally) holds the private key.
"""
from .principal import Principal
from .public import PUBLIC_ROUTES
from .dependencies import acting_user, require

__all__ = ["PUBLIC_ROUTES", "Principal", "acting_user", "require"]

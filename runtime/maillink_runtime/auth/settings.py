"""Authentication settings, shared by every service (environment variables, no service prefix)."""
from pydantic import AliasChoices, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


def _env(default, name: str, description: str):
    return Field(default, validation_alias=AliasChoices(name), description=description)


class AuthSettings(BaseSettings):
    model_config = SettingsConfigDict(extra="ignore", hide_input_in_errors=True)

    jwks_file: str | None = _env(None, "MAILLINK_JWKS_FILE",
                                 "Path of a JWKS (public keys only); re-read when the file changes.")
    jwks_url: str | None = _env(None, "MAILLINK_JWKS_URL",
                                "URL of the identity provider's JWKS; cached, re-fetched for an unknown kid.")
    issuer: str | None = _env(None, "MAILLINK_TOKEN_ISSUER", "When set, tokens must carry this `iss`.")
    max_lifetime_s: int = _env(3600, "MAILLINK_TOKEN_MAX_LIFETIME_S",
                               "Longest accepted token lifetime (exp - iat); longer-lived tokens are refused.")
    link_keys: SecretStr | None = _env(None, "MAILLINK_LINK_KEYS",
                                       "Comma-separated secrets for signed raw-MIME links; the first signs, all "
                                       "verify (rotation). Needed by ingest and matcher.")

    @model_validator(mode="after")
    def one_key_source(self):
        if not self.jwks_file and not self.jwks_url:
            raise ValueError("Set MAILLINK_JWKS_FILE (a JWKS file) or MAILLINK_JWKS_URL (the identity provider's "
                             "JWKS endpoint): every API verifies signed tokens. Locally, `maillink keys init` "
                             "creates a development key set in .run/auth/.")
        return self

    def link_secrets(self) -> list[bytes]:
        if self.link_keys is None:
            return []
        return [k.strip().encode() for k in self.link_keys.get_secret_value().split(",") if k.strip()]

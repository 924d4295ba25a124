"""API key + signer, built from Settings. Public endpoints work without any of it."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from pipeline.binance.signing import HmacSigner, Signer, load_private_key
from pipeline.errors import CredentialError
from pipeline.settings import Secret, Settings

log = logging.getLogger(__name__)

SIGNED_HELP = (
    "set BINANCE_API_KEY plus either BINANCE_API_SECRET (HMAC key) or BINANCE_PRIVATE_KEY_FILE "
    "(Ed25519/RSA private key PEM; BINANCE_PRIVATE_KEY_PASSWORD if it is encrypted)"
)


class MissingCredentials(CredentialError, ValueError):
    """A signed call was attempted without the environment needed to sign it."""


@dataclass(frozen=True)
class Credentials:
    """``api_key`` is a :class:`Secret`; ``signer`` hides its key. Both may be None (public endpoints only)."""

    api_key: Secret | None = None
    signer: Signer | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> Credentials:
        return cls.load(settings.api_key, settings.api_secret, settings.private_key_file, settings.private_key_password)

    @classmethod
    def load(
        cls,
        api_key: Secret | None,
        api_secret: Secret | None = None,
        private_key_file: Path | None = None,
        private_key_password: Secret | None = None,
    ) -> Credentials:
        """HMAC from ``api_secret`` or Ed25519/RSA from ``private_key_file`` (type detected).

        If both are set the private key file wins (an API key has exactly one type; the file is the explicit,
        newer choice).
        """
        signer: Signer | None = None
        if private_key_file is not None:
            signer = load_private_key(private_key_file, private_key_password)
            if api_secret:
                log.warning("both BINANCE_PRIVATE_KEY_FILE and BINANCE_API_SECRET are set; using the private key")
        elif api_secret:
            signer = HmacSigner(api_secret)
        return cls(api_key=api_key or None, signer=signer)

    @property
    def can_sign(self) -> bool:
        return bool(self.api_key) and self.signer is not None

    def redactions(self) -> tuple[str, ...]:
        """Secret texts to scrub from messages (API key, HMAC secret)."""
        key = (self.api_key.reveal(),) if self.api_key else ()
        return key + (self.signer.redactions() if self.signer else ())

    def require_signing(self, endpoint: str) -> tuple[str, Signer]:
        """(api key text, signer) or a clear error naming the env vars to set."""
        if not self.api_key:
            raise MissingCredentials(f"{endpoint} needs an API key: {SIGNED_HELP}")
        if self.signer is None:
            raise MissingCredentials(
                f"{endpoint} is a signed endpoint but no secret/private key is configured: {SIGNED_HELP}"
            )
        return self.api_key.reveal(), self.signer

    def __repr__(self) -> str:
        key = "set" if self.api_key else "none"
        kind = self.signer.key_type if self.signer else "none"
        return f"Credentials(api_key={key}, signer={kind})"

    __str__ = __repr__

    def __reduce__(self):
        raise TypeError("Credentials cannot be pickled")

"""E-mail over SMTP with ``aiosmtplib`` (Mailpit locally; any relay elsewhere).

One connection per message (notifications are few and far between per process). The server's
``250`` answer to the message is the reference kept on the item. A ``5xx`` answer (recipient or
message refused) fails the item; ``4xx`` answers, timeouts and connection failures are retried.
"""

from __future__ import annotations

import datetime as dt

import aiosmtplib

from notifier import messages
from notifier.records import Item
from notifier.settings import EmailSettings

from .base import PermanentSendError, TransientSendError


class SmtpEmail:
    def __init__(
        self, settings: EmailSettings, *, base_url: str, timeout: float, check_timeout: float
    ) -> None:
        self.settings = settings
        self.smtp = settings.smtp
        self.base_url = base_url
        self.timeout = timeout
        self.check_timeout = check_timeout

    async def send(self, item: Item, now: dt.datetime) -> str:
        message = messages.email(
            item,
            sender=self.settings.sender,
            base_url=self.base_url,
            message_id_domain=self.settings.message_id_domain,
            now=now,
        )
        try:
            password = self.smtp.password.get_secret_value() if self.smtp.password else None
            _, answer = await aiosmtplib.send(
                message,
                hostname=self.smtp.host,
                port=self.smtp.port,
                username=self.smtp.username,
                password=password,
                use_tls=self.smtp.tls == "implicit",
                start_tls=self.smtp.tls == "starttls",
                validate_certs=self.smtp.validate_certs,
                timeout=self.timeout,
            )
        except aiosmtplib.SMTPRecipientsRefused as exc:
            codes = [r.code for r in exc.recipients]
            detail = "; ".join(f"{r.code} {r.message}" for r in exc.recipients)
            if all(500 <= code < 600 for code in codes):
                raise PermanentSendError(f"SMTP refused the recipient: {detail}") from exc
            raise TransientSendError(f"SMTP deferred the recipient: {detail}") from exc
        except aiosmtplib.SMTPResponseException as exc:
            text = f"SMTP answered {exc.code} {exc.message}"
            if 500 <= exc.code < 600 and not isinstance(exc, aiosmtplib.SMTPAuthenticationError):
                raise PermanentSendError(text) from exc
            raise TransientSendError(text) from exc
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            raise TransientSendError(f"SMTP {self.smtp.host}:{self.smtp.port}: {exc!r}") from exc
        return answer

    async def check(self) -> None:
        """The server answers: connect (TLS as configured), EHLO, QUIT."""
        client = aiosmtplib.SMTP(
            hostname=self.smtp.host,
            port=self.smtp.port,
            use_tls=self.smtp.tls == "implicit",
            start_tls=self.smtp.tls == "starttls",
            validate_certs=self.smtp.validate_certs,
            timeout=self.check_timeout,
        )
        await client.connect()
        try:
            await client.ehlo()
        finally:
            await client.quit()

    async def close(self) -> None:
        return None

"""E-mail over SMTP with ``aiosmtplib`` (Mailpit locally; any relay elsewhere).

Connections are reused: up to ``NOTIFIER_EMAIL__SMTP__POOL_SIZE`` (by default the senders'
concurrency) stay open between messages (0: one connection per message), each for at most
``__MESSAGES_PER_CONNECTION`` messages and not once it has been idle ``__IDLE_SECONDS``;
concurrent sends beyond the pool open more, which are closed (QUIT) when the pool is full.
Opening a connection costs its EHLO (and STARTTLS and AUTH with a relay): about 7 % of the
notifier's CPU per notification against Mailpit (``benchmarks/bench_notifier.py``), more with
TLS. The EHLO name (this host's fully qualified name unless ``__LOCAL_HOSTNAME`` is set) is
looked up once, not per connection.

A pooled connection the server has dropped meanwhile fails at once (``SMTPServerDisconnected``):
the message is then sent on a new connection. A connection whose transaction failed in any other
way is closed, never reused. The server's ``250`` answer to the message is the reference kept on
the item. A ``5xx`` answer (recipient or message refused) fails the item; ``4xx`` answers,
timeouts and connection failures are retried.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import socket
import time
from dataclasses import dataclass
from email.message import EmailMessage

import aiosmtplib

from notifier import messages
from notifier.records import Item
from notifier.settings import EmailSettings

from .base import PermanentSendError, TransientSendError


@dataclass(slots=True)
class _Connection:
    client: aiosmtplib.SMTP
    sent: int = 0
    idle_since: float = 0.0


class SmtpEmail:
    def __init__(
        self,
        settings: EmailSettings,
        *,
        base_url: str,
        timeout: float,
        check_timeout: float,
        concurrency: int = 16,
    ) -> None:
        self.settings = settings
        self.smtp = settings.smtp
        pool_size = self.smtp.pool_size
        self.pool_size = concurrency if pool_size is None else pool_size
        self.base_url = base_url
        self.timeout = timeout
        self.check_timeout = check_timeout
        self.opened = 0  # connections opened to send (the tests and the benchmark read it)
        self._idle: list[_Connection] = []
        self._hostname = self.smtp.local_hostname

    async def send(self, item: Item, now: dt.datetime) -> str:
        message = messages.email(
            item,
            sender=self.settings.sender,
            base_url=self.base_url,
            message_id_domain=self.settings.message_id_domain,
            now=now,
        )
        try:
            return await self._send(message)
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

    async def _send(self, message: EmailMessage) -> str:
        pooled = self._take()
        if pooled is not None:
            try:
                return await self._transact(pooled, message)
            except aiosmtplib.SMTPServerDisconnected:
                pass  # dropped while idle: the message goes on a new connection
        connection = await self._open(self.timeout)
        self.opened += 1
        return await self._transact(connection, message)

    async def _transact(self, connection: _Connection, message: EmailMessage) -> str:
        try:
            _, answer = await connection.client.send_message(message)
        except BaseException:
            connection.client.close()
            raise
        connection.sent += 1
        await self._give_back(connection)
        return answer

    def _take(self) -> _Connection | None:
        """The most recently used open connection that is still fresh, if any."""
        while self._idle:
            connection = self._idle.pop()
            fresh = time.monotonic() - connection.idle_since < self.smtp.idle_seconds
            if fresh and connection.client.is_connected:
                return connection
            connection.client.close()
        return None

    async def _give_back(self, connection: _Connection) -> None:
        if (
            len(self._idle) < self.pool_size
            and connection.sent < self.smtp.messages_per_connection
            and connection.client.is_connected
        ):
            connection.idle_since = time.monotonic()
            self._idle.append(connection)
            return
        await _quit(connection.client)

    async def _open(self, seconds: float, *, login: bool = True) -> _Connection:
        if self._hostname is None:  # a DNS lookup: once, off the event loop
            self._hostname = await asyncio.to_thread(socket.getfqdn)
        password = self.smtp.password.get_secret_value() if self.smtp.password else None
        client = aiosmtplib.SMTP(
            hostname=self.smtp.host,
            port=self.smtp.port,
            local_hostname=self._hostname,
            username=self.smtp.username if login else None,
            password=password if login else None,
            use_tls=self.smtp.tls == "implicit",
            start_tls=self.smtp.tls == "starttls",
            validate_certs=self.smtp.validate_certs,
            timeout=seconds,
        )
        await client.connect()
        return _Connection(client)

    async def check(self) -> None:
        """The server answers: connect (TLS as configured), EHLO, QUIT. No AUTH: a readiness
        probe every few seconds must not look like a password being guessed."""
        connection = await self._open(self.check_timeout, login=False)
        try:
            await connection.client.ehlo()
        finally:
            await _quit(connection.client)

    async def close(self) -> None:
        idle, self._idle = self._idle, []
        await asyncio.gather(*(_quit(connection.client) for connection in idle))


async def _quit(client: aiosmtplib.SMTP) -> None:
    """QUIT (the polite end of a session); a server that does not answer is simply dropped."""
    try:
        await client.quit()
    except (aiosmtplib.SMTPException, OSError, TimeoutError):
        client.close()

"""Sending over SMTP: STARTTLS or implicit TLS, optional login, timeouts, a bounded retry.

One connection serves every message; a dropped connection or a temporary (4xx) refusal is
retried on a new connection, a permanent (5xx) refusal fails that message only, and a refused
login fails them all.
"""
from __future__ import annotations

import smtplib
import ssl
import time
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Callable

from job.certs import read_extra_certs
from job.errors import MailError
from job.settings import Settings, read_secret

ATTEMPTS = 3
BACKOFF = (1.0, 4.0)  # seconds before the second and the third attempt
DEFAULT_PORTS = {"tls": 465, "starttls": 587, "none": 25}


@dataclass(frozen=True, slots=True)
class Outgoing:
    recipient: str
    message: EmailMessage
    #: The same message without attachments, for a server that refuses the size of the full one.
    lite: Callable[[], EmailMessage]


def tls_context(extra_certs: str) -> ssl.SSLContext:
    """The system trust store, plus the CAs of --extra-certs, read as for registries."""
    context = ssl.create_default_context()
    extra = read_extra_certs(extra_certs) if extra_certs else b""
    if extra:
        context.load_verify_locations(cadata=extra.decode("ascii", "replace"))
    return context


class Mailer:
    """A connection to the SMTP server that reconnects when needed."""

    def __init__(self, settings: Settings, *, sleep: Callable[[float], None] = time.sleep) -> None:
        self.settings = settings
        self.sleep = sleep
        self.port = settings.smtp_port or DEFAULT_PORTS[settings.smtp_security]
        self.password = read_secret("IMVJOB_SMTP_PASSWORD", settings.smtp_password_file) if settings.smtp_user else ""
        if settings.smtp_user and settings.smtp_security == "none":
            raise MailError("refusing to send the SMTP password over a connection without TLS "
                            "(set --smtp-security starttls or tls)", fatal=True)
        self._context = tls_context(settings.extra_certs) if settings.smtp_security != "none" else None
        self._smtp: smtplib.SMTP | None = None

    def __enter__(self) -> "Mailer":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._smtp is not None:
            try:
                self._smtp.quit()
            except (smtplib.SMTPException, OSError):
                self._smtp.close()
            self._smtp = None

    def _connect(self) -> smtplib.SMTP:
        s = self.settings
        host, timeout = s.smtp_host, s.smtp_timeout
        if s.smtp_security == "tls":
            smtp: smtplib.SMTP = smtplib.SMTP_SSL(host, self.port, timeout=timeout, context=self._context)
        else:
            smtp = smtplib.SMTP(host, self.port, timeout=timeout)
        try:
            smtp.ehlo()
            if s.smtp_security == "starttls":
                if not smtp.has_extn("starttls"):
                    raise MailError(f"{host}:{self.port} does not offer STARTTLS; not sending in clear",
                                    fatal=True)
                smtp.starttls(context=self._context)
                smtp.ehlo()
            if s.smtp_user:
                smtp.login(s.smtp_user, self.password)
        except BaseException:
            smtp.close()
            raise
        return smtp

    def send(self, item: Outgoing) -> str:
        """Send one message, retrying what may pass later. Returns a note ('' or why it went without
        attachments); raises MailError when it cannot be sent."""
        last, connecting = "", False
        for attempt in range(ATTEMPTS):
            if attempt:
                self.sleep(BACKOFF[min(attempt - 1, len(BACKOFF) - 1)])
            connecting = self._smtp is None
            try:
                if self._smtp is None:
                    self._smtp = self._connect()
                connecting = False
                return self._deliver(self._smtp, item)
            except MailError:
                self.close()
                raise
            except smtplib.SMTPAuthenticationError as exc:
                self.close()
                raise MailError(f"login refused: {exc.smtp_code} {_text(exc.smtp_error)}", fatal=True) from exc
            except ssl.SSLCertVerificationError as exc:
                self.close()
                raise MailError(f"TLS certificate of {self.settings.smtp_host} not trusted: {exc.verify_message}",
                                fatal=True) from exc
            except smtplib.SMTPRecipientsRefused as exc:
                code, text = next(iter(exc.recipients.values()))
                if code >= 500:
                    self._reset()
                    raise MailError(f"recipient refused: {code} {_text(text)}") from exc
                last = f"recipient deferred: {code} {_text(text)}"
                self.close()
            except smtplib.SMTPResponseException as exc:
                if exc.smtp_code >= 500:
                    self._reset()
                    raise MailError(f"refused: {exc.smtp_code} {_text(exc.smtp_error)}") from exc
                last = f"deferred: {exc.smtp_code} {_text(exc.smtp_error)}"
                self.close()
            except (smtplib.SMTPException, OSError) as exc:
                last = f"{type(exc).__name__}: {exc}"
                self.close()
        # A server that cannot be reached at all will not take the next message either.
        raise MailError(f"gave up after {ATTEMPTS} attempts: {last}", fatal=connecting)

    def _deliver(self, smtp: smtplib.SMTP, item: Outgoing) -> str:
        sender = str(item.message["From"])
        message, note = item.message, ""
        limit = int(smtp.esmtp_features.get("size", "0") or 0) if smtp.does_esmtp else 0
        if limit and len(message.as_bytes()) > limit:
            message = item.lite()
            note = f"sent without attachments: the server takes at most {limit:,} bytes"
        smtp.send_message(message, from_addr=sender, to_addrs=[item.recipient])
        return note

    def _reset(self) -> None:
        # After a refused message the session must be reset before the next one.
        try:
            if self._smtp is not None:
                self._smtp.rset()
        except (smtplib.SMTPException, OSError):
            self.close()


def _text(value: bytes | str) -> str:
    text = value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
    return " ".join(text.split())

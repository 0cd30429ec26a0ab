"""Where the outbox's messages go: one ``Sender`` interface for e-mail and SMS.

* ``SmtpSender`` - e-mail through an SMTP relay (the standard library's ``smtplib``):
  STARTTLS or TLS, optional log-in, one connection reused for a batch;
* ``FileSender`` - appends each message as one JSON line to a file: the demo's and the tests'
  e-mail, and SMS everywhere for now (Brygga has no SMS gateway yet: an SMS sender is one more
  class with ``send``, chosen in ``senders_from_settings``);
* ``ChannelSender`` - routes each channel (``email``, ``sms``) to its sender.

A failed send raises ``DeliveryError``, whose reason is a short code ("SMTP 451",
"ConnectionRefusedError") and never the server's text, which may quote the address.
``deliver`` (``outbox.py``) decides from it whether to retry, give up, or stop the batch.
"""

from __future__ import annotations

__all__ = [
    "ChannelSender",
    "DeliveryError",
    "FileSender",
    "Sender",
    "SmtpSender",
    "senders_from_settings",
]

import contextlib
import json
import smtplib
import ssl
import threading
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid, parseaddr
from pathlib import Path
from typing import Protocol

from brygga.clock import now
from brygga.config import NotifySettings, secret

DEFAULT_PORTS = {"starttls": 587, "ssl": 465, "none": 25}


class DeliveryError(Exception):
    """A message could not be sent.

    ``permanent``: retrying cannot help (the address is refused, 5xx); ``stop``: the channel
    itself failed (no connection, log-in refused), so the rest of the batch waits for the next
    run instead of each message timing out in turn.
    """

    def __init__(self, reason: str, *, permanent: bool = False, stop: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason[:200]
        self.permanent = permanent
        self.stop = stop


class Sender(Protocol):
    def send(self, channel: str, address: str, subject: str, text: str) -> None: ...

    def close(self) -> None: ...


class FileSender:
    """Appends each message as one JSON line to a file (no real delivery)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()  # several flushers of one process append whole lines

    def send(self, channel: str, address: str, subject: str, text: str) -> None:
        line = {"channel": channel, "to": address, "subject": subject, "text": text,
                "at": now().isoformat()}  # fmt: skip
        with self._lock:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self.path.open("a", encoding="utf-8") as f:
                f.write(json.dumps(line, ensure_ascii=False) + "\n")

    def close(self) -> None:
        pass


class SmtpSender:
    """E-mail through an SMTP relay; one connection per batch (``close`` ends it).

    Not thread-safe: each flusher builds its own (``Brygga.sender``).
    """

    def __init__(self, settings: NotifySettings) -> None:
        if not settings.smtp_from:
            raise ValueError("smtp_from is required")
        self.settings = settings
        self.port = settings.smtp_port or DEFAULT_PORTS[settings.smtp_security]
        self._smtp: smtplib.SMTP | None = None
        domain = parseaddr(settings.smtp_from)[1].rpartition("@")[2]
        self._domain = domain or "brygga.invalid"

    def _context(self) -> ssl.SSLContext:
        ca = self.settings.smtp_ca_file
        return ssl.create_default_context(cafile=str(ca) if ca else None)

    def _connect(self) -> smtplib.SMTP:
        s = self.settings
        if s.smtp_security == "ssl":
            smtp: smtplib.SMTP = smtplib.SMTP_SSL(
                s.smtp_host, self.port, timeout=s.smtp_timeout, context=self._context()
            )
        else:
            smtp = smtplib.SMTP(s.smtp_host, self.port, timeout=s.smtp_timeout)
        try:
            smtp.ehlo()
            if s.smtp_security == "starttls":
                smtp.starttls(context=self._context())  # refuses a server without STARTTLS
                smtp.ehlo()
            if s.smtp_username:
                smtp.login(s.smtp_username, secret(s.smtp_password) or "")
        except BaseException:
            _quietly_close(smtp)
            raise
        return smtp

    def message(self, address: str, subject: str, text: str) -> EmailMessage:
        msg = EmailMessage()
        msg["From"] = self.settings.smtp_from
        msg["To"] = address
        msg["Subject"] = subject
        msg["Date"] = format_datetime(now())
        msg["Message-ID"] = make_msgid(domain=self._domain)
        # RFC 3834: an automatic message; out-of-office replies should not answer it.
        msg["Auto-Submitted"] = "auto-generated"
        msg.set_content(text)
        return msg

    def send(self, channel: str, address: str, subject: str, text: str) -> None:
        if channel != "email":
            raise DeliveryError(f"no {channel} gateway", stop=True)
        try:
            if self._smtp is None:
                self._smtp = self._connect()
            self._smtp.send_message(self.message(address, subject, text))
        except smtplib.SMTPRecipientsRefused as exc:
            code = next(iter(exc.recipients.values()), (0, b""))[0]
            raise DeliveryError(f"SMTP {code}", permanent=500 <= code < 600) from None
        except (smtplib.SMTPDataError, smtplib.SMTPSenderRefused) as exc:
            # The message (or, for the sender's address, every message) was refused.
            permanent = isinstance(exc, smtplib.SMTPDataError) and 500 <= exc.smtp_code < 600
            if not permanent:
                self.close()  # start the next message on a fresh session
            raise DeliveryError(
                f"SMTP {exc.smtp_code}",
                permanent=permanent,
                stop=isinstance(exc, smtplib.SMTPSenderRefused),
            ) from None
        except smtplib.SMTPResponseException as exc:  # greeting, EHLO, STARTTLS, log-in
            self.close()
            raise DeliveryError(f"SMTP {exc.smtp_code}", stop=True) from None
        except (smtplib.SMTPException, OSError) as exc:  # no connection, TLS, timeout
            self.close()
            raise DeliveryError(type(exc).__name__, stop=True) from None

    def close(self) -> None:
        smtp, self._smtp = self._smtp, None
        if smtp is not None:
            try:
                smtp.quit()
            except (smtplib.SMTPException, OSError):
                _quietly_close(smtp)


def _quietly_close(smtp: smtplib.SMTP) -> None:
    with contextlib.suppress(OSError):
        smtp.close()


class ChannelSender:
    """Sends each channel's messages through its own sender."""

    def __init__(self, by_channel: dict[str, Sender]) -> None:
        self.by_channel = by_channel

    def send(self, channel: str, address: str, subject: str, text: str) -> None:
        sender = self.by_channel.get(channel)
        if sender is None:
            raise DeliveryError(f"no {channel} sender", stop=True)
        sender.send(channel, address, subject, text)

    def close(self) -> None:
        for sender in self.by_channel.values():
            sender.close()


def senders_from_settings(settings: NotifySettings, default_file: Path) -> ChannelSender:
    """The senders the settings choose: e-mail through SMTP or to the file, SMS to the file.
    ``default_file``: the file when ``settings.file`` is unset."""
    file = FileSender(settings.file or default_file)
    email: Sender = SmtpSender(settings) if settings.sender == "smtp" else file
    return ChannelSender({"email": email, "sms": file})

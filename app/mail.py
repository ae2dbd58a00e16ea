"""Sending e-mail through the configured SMTP server (acknowledgements to donors).

Settings: SMTP_HOST, SMTP_PORT, SMTP_USERNAME, SMTP_PASSWORD, SMTP_USE_TLS and MAIL_FROM.
Without SMTP_HOST or MAIL_FROM, mail is off and mail_settings() returns None. With
SMTP_USE_TLS the connection is upgraded with STARTTLS (or, on port 465, is TLS from the
start) and the server's certificate is verified; credentials are never sent without TLS.
"""

from __future__ import annotations

import smtplib
import ssl
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate, make_msgid


class MailError(RuntimeError):
    """The message could not be handed to the SMTP server."""


@dataclass(frozen=True)
class MailSettings:
    host: str
    port: int
    sender: str
    username: str | None = None
    password: str | None = None
    use_tls: bool = True
    timeout: float = 20.0


def mail_settings(config) -> MailSettings | None:
    host, sender = config.get("SMTP_HOST"), config.get("MAIL_FROM")
    if not host or not sender:
        return None
    return MailSettings(
        host=str(host), port=int(config.get("SMTP_PORT") or 587), sender=str(sender),
        username=config.get("SMTP_USERNAME") or None, password=config.get("SMTP_PASSWORD") or None,
        use_tls=bool(config.get("SMTP_USE_TLS")),
    )


@dataclass(frozen=True)
class Attachment:
    filename: str
    data: bytes
    maintype: str = "application"
    subtype: str = "pdf"


def build_message(sender: str, to: str, subject: str, body: str,
                  attachments: tuple[Attachment, ...] = ()) -> EmailMessage:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = to
    message["Subject"] = subject
    message["Date"] = formatdate(localtime=False, usegmt=True)
    message["Message-ID"] = make_msgid(domain=sender.rpartition("@")[2] or None)
    message.set_content(body)
    for item in attachments:
        message.add_attachment(item.data, maintype=item.maintype, subtype=item.subtype,
                               filename=item.filename)
    return message


def send(settings: MailSettings, message: EmailMessage) -> None:
    """Hand the message to the SMTP server, or raise MailError saying why not."""
    if settings.username and not settings.use_tls:
        raise MailError("SMTP credentials are set but SMTP_USE_TLS is off; refusing to send "
                        "them in clear text")
    context = ssl.create_default_context()
    try:
        if settings.use_tls and settings.port == 465:
            smtp = smtplib.SMTP_SSL(settings.host, settings.port, timeout=settings.timeout,
                                    context=context)
        else:
            smtp = smtplib.SMTP(settings.host, settings.port, timeout=settings.timeout)
        with smtp:
            if settings.use_tls and settings.port != 465:
                smtp.starttls(context=context)
            if settings.username:
                smtp.login(settings.username, settings.password or "")
            refused = smtp.send_message(message)
    except (smtplib.SMTPException, OSError) as error:
        raise MailError(f"the mail server did not accept the message: {error}") from error
    if refused:
        raise MailError(f"the mail server refused: {', '.join(refused)}")

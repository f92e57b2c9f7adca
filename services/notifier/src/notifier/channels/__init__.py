"""The notifier's channels: e-mail (SMTP, ACS Email), SMS (local sink, ACS SMS), webhooks."""

from .base import PermanentSendError, Sender, SendError, TransientSendError

__all__ = ["PermanentSendError", "SendError", "Sender", "TransientSendError"]

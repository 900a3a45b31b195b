"""Extra CAs (--extra-certs): the PEM certificates that registries and the SMTP server are
checked against besides the system's. Read by job.registries.tls and job.notify.smtp alike.
"""
from __future__ import annotations

import ssl
from pathlib import Path

from job.errors import ConfigError
from job.files import NotRegularFile, TooLarge, read_regular

_PEM_BEGIN = b"-----BEGIN CERTIFICATE-----"
#: A file of CAs: the system's whole bundle is some 200 kB.
MAX_FILE_BYTES = 16 << 20


def read_extra_certs(path: str) -> bytes:
    """The PEM certificates of a file, or of the files of a folder, as CSO reads its extra-certs
    folder: every file (hidden ones, such as a mounted volume's `..data`, aside) that holds a
    certificate. A folder with none means no extra CAs: that is what the CronJob mounts where
    neither the CSO Secret nor OpenShift's injected bundle exists."""
    root = Path(path)
    if root.is_dir():
        files = sorted(p for p in root.iterdir() if not p.name.startswith(".") and p.is_file())
        in_folder = True
    elif root.exists():
        files, in_folder = [root], False
    else:
        raise ConfigError(f"--extra-certs {path}: no such file or folder")
    chunks = []
    for file in files:
        try:
            data = read_regular(file, max_bytes=MAX_FILE_BYTES)
        except NotRegularFile as exc:
            raise ConfigError(f"--extra-certs: {file} is {exc.kind}, not a file") from exc
        except TooLarge as exc:
            raise ConfigError(f"--extra-certs: {file} is larger than {MAX_FILE_BYTES >> 20} MiB") from exc
        except OSError as exc:
            raise ConfigError(f"--extra-certs: cannot read {file}: {exc.strerror}") from exc
        if _PEM_BEGIN not in data:
            if in_folder:
                continue  # a key, a README: not a certificate, not an error
            raise ConfigError(f"--extra-certs: {file} holds no PEM certificate")
        try:
            ssl.create_default_context(cadata=data.decode("ascii", "replace"))
        except ssl.SSLError as exc:
            raise ConfigError(f"--extra-certs: {file} is not a valid PEM certificate ({exc.reason})") from exc
        chunks.append(data.rstrip(b"\n") + b"\n")
    return b"".join(chunks)

"""Vendor Swagger UI (npm ``swagger-ui-dist``) into src/brygga/web/static/swagger/ for /api/docs.

    python frontend/vendor_swagger.py 5.35.0

Needs node's ``npm`` and the registry; nothing at run time or in CI does (the files are
committed). The app's Content-Security-Policy is ``default-src 'self'``: no CDN, no inline
script (static/swagger/init.js starts Swagger UI), and no ``data:`` image either, so every
``url(data:...)`` of swagger-ui.css becomes a file beside it, named by its hash. Source-map
comments are dropped (the maps are not shipped).
"""

from __future__ import annotations

import base64
import hashlib
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path
from urllib.parse import unquote

OUT = Path(__file__).resolve().parents[1] / "src/brygga/web/static/swagger"
DATA_URL = re.compile(r"""url\((["']?)data:(image/[a-z+]+)(;charset=utf-8)?(;base64)?,(.*?)\1\)""")
SUFFIX = {"image/svg+xml": "svg", "image/png": "png", "image/jpeg": "jpg"}


def extract_images(css: str) -> str:
    def to_file(m: re.Match[str]) -> str:
        quote, mime, _, b64, body = m.groups()
        if b64:
            data = base64.b64decode(body)
        else:
            data = unquote(body.replace('\\"', '"') if quote == '"' else body).encode()
        name = f"img-{hashlib.sha256(data).hexdigest()[:12]}.{SUFFIX[mime]}"
        (OUT / name).write_bytes(data)
        return f'url("{name}")'

    return DATA_URL.sub(to_file, css)


def main(version: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(["npm", "pack", f"swagger-ui-dist@{version}", "--silent"], cwd=tmp,
                       check=True, stdout=subprocess.DEVNULL)  # fmt: skip
        (tgz,) = Path(tmp).glob("swagger-ui-dist-*.tgz")
        with tarfile.open(tgz) as tar:
            tar.extractall(tmp, filter="data")
        package = Path(tmp) / "package"
        shutil.rmtree(OUT / "img", ignore_errors=True)
        for old in OUT.glob("img-*"):
            old.unlink()
        OUT.mkdir(parents=True, exist_ok=True)
        shutil.copy(package / "LICENSE", OUT / "LICENSE.txt")
        shutil.copy(package / "NOTICE", OUT / "NOTICE.txt")
        shutil.copy(package / "swagger-ui-bundle.js.LICENSE.txt", OUT)
        no_maps = re.compile(r"\n?/[/*]# sourceMappingURL=\S+(\s*\*/)?")
        js = (package / "swagger-ui-bundle.js").read_text(encoding="utf-8")
        (OUT / "swagger-ui-bundle.js").write_text(no_maps.sub("", js), encoding="utf-8")
        css = (package / "swagger-ui.css").read_text(encoding="utf-8")
        (OUT / "swagger-ui.css").write_text(extract_images(no_maps.sub("", css)), encoding="utf-8")
    print(f"swagger-ui-dist {version} vendored into {OUT}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "5.35.0")

"""Test certificates made with the openssl CLI (scripts/test-all.sh installs it).

    ca = CertAuthority(tmp_path / "pki")              # a CA (EC P-256), ca.pem
    server = ca.issue("broker", cn="localhost")       # key + cert with SAN localhost, 127.0.0.1
    server.keystore_pem                               # key and chain in one file (ssl.keystore.location)
    server.pkcs12("secret")                           # a PKCS12 keystore, password "secret"
    ca.truststore_pkcs12("secret")                    # the CA alone in a PKCS12 truststore
    client = ca.issue("alice", cn="alice", ou="eng")  # a client certificate (mutual TLS)

Each issued certificate has a fresh random serial, so a rotated one is told apart.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path


def _openssl(*args: str, cwd: Path) -> None:
    res = subprocess.run(["openssl", *args], cwd=cwd, capture_output=True, text=True)
    assert res.returncode == 0, f"openssl {' '.join(args)} failed:\n{res.stderr}"


class Issued:
    def __init__(self, directory: Path, name: str, ca: "CertAuthority"):
        self.dir = directory
        self.name = name
        self.ca = ca
        self.key = directory / f"{name}.key"
        self.cert = directory / f"{name}.pem"

    @property
    def keystore_pem(self) -> Path:
        """Private key, certificate and CA in one PEM file (ssl.keystore.type=PEM)."""
        path = self.dir / f"{self.name}.keystore.pem"
        path.write_text(self.key.read_text() + self.cert.read_text() + self.ca.cert.read_text())
        return path

    def pkcs12(self, password: str) -> Path:
        path = self.dir / f"{self.name}.p12"
        _openssl("pkcs12", "-export", "-inkey", str(self.key), "-in", str(self.cert),
                 "-certfile", str(self.ca.cert), "-name", self.name, "-out", str(path),
                 "-passout", f"pass:{password}", cwd=self.dir)
        return path

    def serial(self) -> int:
        out = subprocess.run(["openssl", "x509", "-noout", "-serial", "-in", str(self.cert)],
                             capture_output=True, text=True, check=True).stdout
        return int(out.strip().split("=", 1)[1], 16)


class CertAuthority:
    def __init__(self, directory: Path, cn: str = "vltava test CA"):
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.key = self.dir / "ca.key"
        self.cert = self.dir / "ca.pem"
        _openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256",
                 "-out", str(self.key), cwd=self.dir)
        _openssl("req", "-x509", "-new", "-key", str(self.key), "-days", "3", "-subj", f"/CN={cn}",
                 "-addext", "basicConstraints=critical,CA:TRUE",
                 "-addext", "keyUsage=critical,keyCertSign,cRLSign",
                 "-out", str(self.cert), cwd=self.dir)

    def issue(self, name: str, cn: str = "localhost", ou: str | None = None, o: str = "vltava",
              sans: str = "DNS:localhost,IP:127.0.0.1") -> Issued:
        issued = Issued(self.dir, name, self)
        subject = f"/O={o}" + (f"/OU={ou}" if ou else "") + f"/CN={cn}"
        csr = self.dir / f"{name}.csr"
        ext = self.dir / f"{name}.ext"
        ext.write_text(f"basicConstraints=CA:FALSE\nsubjectAltName={sans}\n"
                       "keyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth,clientAuth\n")
        _openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256",
                 "-out", str(issued.key), cwd=self.dir)
        _openssl("req", "-new", "-key", str(issued.key), "-subj", subject, "-out", str(csr), cwd=self.dir)
        _openssl("x509", "-req", "-in", str(csr), "-CA", str(self.cert), "-CAkey", str(self.key),
                 "-set_serial", str(int.from_bytes(os.urandom(8), "big")),
                 "-days", "2", "-extfile", str(ext), "-out", str(issued.cert), cwd=self.dir)
        return issued

    def truststore_pkcs12(self, password: str) -> Path:
        path = self.dir / "truststore.p12"
        _openssl("pkcs12", "-export", "-nokeys", "-in", str(self.cert), "-out", str(path),
                 "-passout", f"pass:{password}", cwd=self.dir)
        return path

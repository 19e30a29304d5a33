"""Host B's UDP echo answers on the addresses it is bound to and on no other (roles/host_b/files/vnflab_udp_echo.py):
a real Host B binds its lab addresses only, never its management network."""

from __future__ import annotations

import random
import socket
import subprocess
import sys
import time
from pathlib import Path

ECHO = Path(__file__).resolve().parents[2] / "roles/host_b/files/vnflab_udp_echo.py"


def ask(address: str, port: int, payload: bytes, timeout: float = 0.5) -> bytes | None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(timeout)
        sock.sendto(payload, (address, port))
        try:
            return sock.recvfrom(65535)[0]
        except (TimeoutError, ConnectionRefusedError):
            return None


def test_answers_on_every_bound_address_and_nowhere_else() -> None:
    port = random.randint(20000, 60000)
    # 198.18.254.254 is on no interface: IP_FREEBIND lets the service start before the lab puts it on.
    echo = subprocess.Popen([sys.executable, str(ECHO), "--bind", "127.0.0.2", "--bind", "127.0.0.3",
                             "--bind", "198.18.254.254", "--port", str(port)], stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 10
        while ask("127.0.0.2", port, b"up?", 0.2) is None:
            assert echo.poll() is None, echo.stderr.read() if echo.stderr else ""
            assert time.monotonic() < deadline, "the echo service did not answer"
        payload = bytes(range(256)) * 255 + bytes(range(227))  # 65507 bytes, the largest UDP payload
        assert ask("127.0.0.2", port, payload) == payload
        assert ask("127.0.0.3", port, b"second address") == b"second address"
        assert ask("127.0.0.1", port, b"not bound here") is None
    finally:
        echo.terminate()
        echo.wait(timeout=10)
    assert echo.returncode == 0


def test_the_systemd_unit_passes_every_address_on_its_own_execstart_line() -> None:
    """Rendered as the template module does (trim_blocks): a block tag must not swallow the next line."""
    import jinja2

    template = (ECHO.parents[1] / "templates/vnflab-udp-echo.service.j2").read_text()
    environment = jinja2.Environment(trim_blocks=True, undefined=jinja2.StrictUndefined)
    environment.filters["regex_replace"] = lambda value, pattern, replacement: __import__("re").sub(
        pattern, replacement, value)
    unit = environment.from_string(template).render(
        ansible_managed="managed", vnflab_install_dir="/usr/local/lib/vnflab", host_b_udp_port=7007,
        host_b_bind=["198.18.0.2", "198.18.12.2"]).splitlines()
    assert "ExecStart=/usr/bin/python3 /usr/local/lib/vnflab/vnflab_udp_echo.py --port 7007 --bind=198.18.0.2"\
        " --bind=198.18.12.2" in unit
    assert "Restart=always" in unit

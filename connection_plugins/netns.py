# Copyright: vnflab contributors
# Apache License 2.0
"""Connection plugin that runs tasks inside a Linux network namespace of the controller."""

from __future__ import annotations

DOCUMENTATION = r"""
name: netns
short_description: Run tasks inside a network namespace on the controller
description:
  - Runs every command of a task through C(ip netns exec NAME) on the controller, so a network
    namespace stands in for a separate lab host (Host A or Host B of the vnflab local lab).
  - Files are copied as with the C(local) connection: a namespace shares the controller's file system.
  - The very same plays reach real hosts over SSH; only the inventory differs.
author: vnflab contributors
extends_documentation_fragment:
  - connection_pipelining
options:
  netns_name:
    description:
      - Name of the network namespace (as listed by C(ip netns list)).
      - Defaults to the inventory host name.
    type: str
    vars:
      - name: ansible_netns_name
  become_success_timeout:
    description: Seconds to wait for become to succeed (as in the local connection).
    type: int
    default: 10
    vars:
      - name: ansible_local_become_success_timeout
  become_strip_preamble:
    description: Strip internal become output preceding command execution (as in the local connection).
    type: bool
    default: true
    vars:
      - name: ansible_local_become_strip_preamble
notes:
  - The namespace must exist before the first task that uses this connection; the vnflab C(lab) play
    (role C(local_lab)) creates it.
  - Needs root (CAP_SYS_ADMIN and CAP_NET_ADMIN) on the controller.
"""

import os
import shlex

from ansible.errors import AnsibleConnectionFailure
from ansible.plugins.connection.local import Connection as LocalConnection

NETNS_RUN_DIR = "/run/netns"


class Connection(LocalConnection):
    """Local connection whose commands run inside one network namespace."""

    transport = "netns"

    def _netns_name(self) -> str:
        name = self.get_option("netns_name") or self._play_context.remote_addr
        if not name or "/" in name:
            raise AnsibleConnectionFailure(f"invalid network namespace name: {name!r}")
        return name

    def _connect(self) -> Connection:
        name = self._netns_name()
        if not os.path.exists(os.path.join(NETNS_RUN_DIR, name)):
            raise AnsibleConnectionFailure(
                f"network namespace {name!r} does not exist; run the lab play first "
                "(ansible-playbook site.yml --tags lab)"
            )
        return super()._connect()

    def exec_command(self, cmd: str, in_data: bytes | None = None, sudoable: bool = True) -> tuple[int, bytes, bytes]:
        wrapped = f"ip netns exec {shlex.quote(self._netns_name())} /bin/sh -c {shlex.quote(cmd)}"
        return super().exec_command(wrapped, in_data=in_data, sudoable=sudoable)

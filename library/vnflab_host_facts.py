#!/usr/bin/python
# Copyright: vnflab contributors
# Apache License 2.0
"""Ansible module: facts about a lab host for the vnflab run manifest."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: vnflab_host_facts
short_description: Gather what a vnflab result depends on from one lab host
description:
  - Reads the kernel release, CPU model and count, total memory, KSM and transparent huge page state, and the
    versions of the tools a platform uses (Docker client and server, containerd, runc, iptables, QEMU, Xen's xl,
    iproute2). A tool that is not installed is reported as null.
  - Returns them as the fact C(vnflab_host) for the run manifest.
version_added: "0.1.0"
author: vnflab contributors
options: {}
extends_documentation_fragment:
  - vnflab_attributes
  - vnflab_attributes.check_mode_full
attributes:
  facts:
    support: full
"""

EXAMPLES = r"""
- name: Gather manifest facts
  vnflab_host_facts:

- name: Show the kernel
  ansible.builtin.debug:
    var: vnflab_host.kernel
"""

RETURN = r"""
ansible_facts:
  description: Facts added to the host.
  returned: always
  type: dict
  contains:
    vnflab_host:
      description:
        - Kernel, cpu_model, cpu_count, mem_total_mb, ksm_run, thp_enabled, thp_defrag, kvm_device, python, os
        - and tools (name -> version or null).
      type: dict
      returned: always
      sample:
        kernel: 6.1.0-28-amd64
        cpu_model: AMD EPYC
        cpu_count: 2
        tools: {docker_server: 20.10.24+dfsg1}
"""

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.vnflab_host.hostfacts import host_facts


def main() -> None:
    module = AnsibleModule(argument_spec={}, supports_check_mode=True)

    def run(argv: list[str]) -> tuple[int, str, str]:
        if not module.get_bin_path(argv[0]):
            return 127, "", f"{argv[0]} not found"
        return module.run_command(argv, environ_update={"LC_ALL": "C"})

    module.exit_json(changed=False, ansible_facts={"vnflab_host": host_facts(run)})


if __name__ == "__main__":
    main()

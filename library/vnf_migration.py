#!/usr/bin/python
# Copyright: vnflab contributors
# Apache License 2.0
"""Ansible module: move the path's proxy VNF while Host A probes through it (migration time and downtime)."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: vnf_migration
short_description: Measure a live migration of the proxy VNF, with the downtime Host A sees
description:
  - One migration is two parts run at the same time on two hosts (playbooks/migration.yml).
  - O(part=stream) runs on Host A, asynchronously (C(async) with C(poll) 0). It sends one echo request every
    O(interval_ms) to O(target) (the proxy's Host A-side address; Host B answers through the proxy) for
    O(duration_s), a fixed and bounded rate. It returns the requests sent, the replies, the requests lost and the
    downtime, the longest time without a reply (from the first request, between replies, or until the end of the
    stream when the path did not come back).
  - O(part=move) runs on the VNF server. It runs the platform driver's optional C(migrate) argv once (it moves
    the proxy VNF; see docs/design.md) and returns its wall time (total migration time), the bytes the platform
    transferred and its own downtime figure where the command prints them. A driver without C(migrate), or a
    command that exits 3 (the mechanism cannot run on this server), returns C(skipped_reason) and moves nothing.
  - O(part=record) runs on the controller (the action plugin) and journals the two parts' results as samples of
    the metric C(migration) (C(total_ms), C(downtime_ms), C(requests_lost), C(bytes_transferred),
    C(platform_downtime_ms)), or one skipped sample with the reason.
version_added: "0.2.0"
author: vnflab contributors
options:
  part:
    description: Which part of the migration this task runs.
    type: str
    choices: [stream, move, record]
    required: true
  target:
    description: O(part=stream) IPv4 address the requests go to (the proxy's Host A-side address).
    type: str
  mode:
    description: O(part=stream) C(icmp) echo or C(udp) to the echo service on Host B.
    type: str
    choices: [icmp, udp]
    default: icmp
  udp_port:
    description: O(part=stream) UDP port of Host B's echo service.
    type: int
    default: 7007
  interval_ms:
    description: O(part=stream) Time between two requests (a fixed rate, whatever the replies).
    type: float
    default: 1.0
  duration_s:
    description: O(part=stream) How long the stream sends (at most 300 s).
    type: float
    default: 20.0
  size:
    description: O(part=stream) Payload bytes of each request.
    type: int
    default: 64
  driver:
    description: O(part=move) The platform driver specification (the fact C(vnflab_driver)).
    type: dict
  timeout_s:
    description: O(part=move) How long the migrate command may take.
    type: float
    default: 240.0
  stream:
    description: O(part=record) The stream part's result (from C(async_status)).
    type: dict
  move:
    description: O(part=record) The move part's result.
    type: dict
  repetition:
    description: O(part=record) Index of this migration for the point.
    type: int
    default: 0
  journal:
    description: O(part=record) Controller journal settings (path, run_id, platform, label).
    type: dict
extends_documentation_fragment:
  - vnflab_attributes
attributes:
  check_mode:
    support: full
    details: Validates the parameters; sends nothing, moves nothing.
notes:
  - O(part=stream) needs root (raw sockets) on Host A for ICMP.
"""

EXAMPLES = r"""
- name: Stream through the proxy for 20 s (in the background)
  vnf_migration:
    part: stream
    target: 198.18.11.1
    duration_s: 20
  async: 60
  poll: 0
  register: stream_job

- name: Move the proxy VNF
  vnf_migration:
    part: move
    driver: "{{ hostvars['osv'].vnflab_driver }}"
  delegate_to: osv
  register: moved
"""

RETURN = r"""
sent:
  description: O(part=stream) Requests sent.
  returned: success
  type: int
replied:
  description: O(part=stream) Requests answered.
  returned: success
  type: int
lost:
  description: O(part=stream) Requests without a reply (send errors included).
  returned: success
  type: int
downtime_ms:
  description: O(part=stream) Longest time without a reply, in ms.
  returned: success
  type: float
recovered:
  description: O(part=stream) Whether replies came again before the stream ended.
  returned: success
  type: bool
gaps_ms:
  description: O(part=stream) The longest gaps above two intervals, as [offset from the first request, gap] in ms.
  returned: success
  type: list
start_ns:
  description: O(part=move) CLOCK_REALTIME when the migrate command started (ns).
  returned: success
  type: int
total_ms:
  description: O(part=move) Wall time of the migrate command (total migration time), in ms.
  returned: success
  type: float
bytes:
  description: O(part=move) Bytes the platform transferred, where its command says.
  returned: success
  type: int
skipped_reason:
  description: O(part=move) Why nothing moved (no mechanism on this platform or server), else null.
  returned: success
  type: str
"""

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.vnflab_host.migration import MAX_DURATION_S, migrate, stream
from ansible.module_utils.vnflab_host.probe_module import check_positive, run_probe_module


def run(module: AnsibleModule) -> dict:
    params = module.params
    if module.check_mode:
        return {"changed": False, "msg": "check mode: parameters valid, nothing sent or moved"}
    if params["part"] == "stream":
        summary, send_errors = stream(
            params["target"], duration_s=params["duration_s"], interval_s=params["interval_ms"] / 1000.0,
            mode=params["mode"], udp_port=params["udp_port"], payload_bytes=params["size"])
        return {"changed": False, **summary.as_dict(), "send_errors": send_errors, "mode": params["mode"],
                "interval_ms": params["interval_ms"], "duration_s": params["duration_s"]}
    driver = params["driver"] or {}
    argv = driver.get("migrate")
    if not argv:
        return {"changed": False,
                "skipped_reason": f"not applicable: platform {driver.get('name', '?')} has no migrate mechanism"}
    outcome = migrate(argv, timeout_s=params["timeout_s"])
    if outcome.error is not None:
        module.fail_json(msg=f"migrate failed: {outcome.error}", **outcome.as_dict())
    return {"changed": outcome.skipped_reason is None, **outcome.as_dict()}


def main() -> None:
    module = AnsibleModule(
        argument_spec=dict(
            part=dict(type="str", choices=["stream", "move", "record"], required=True),
            target=dict(type="str"),
            mode=dict(type="str", choices=["icmp", "udp"], default="icmp"),
            udp_port=dict(type="int", default=7007),
            interval_ms=dict(type="float", default=1.0),
            duration_s=dict(type="float", default=20.0),
            size=dict(type="int", default=64),
            driver=dict(type="dict"),
            timeout_s=dict(type="float", default=240.0),
            stream=dict(type="dict"),
            move=dict(type="dict"),
            repetition=dict(type="int", default=0),
            journal=dict(type="dict"),
        ),
        required_if=[("part", "stream", ("target",)), ("part", "move", ("driver",))],
        supports_check_mode=True,
    )
    params = module.params
    checks = [
        ("part", "record runs on the controller (action plugin vnf_migration)" if params["part"] == "record"
         else None),
        ("duration_s", None if 0 < params["duration_s"] <= MAX_DURATION_S else f"must be in (0, {MAX_DURATION_S}]"),
        ("interval_ms", None if params["interval_ms"] >= 0.1 else "must be at least 0.1"),
        ("size", None if 16 <= params["size"] <= 1472 else "must be 16 to 1472"),
        ("timeout_s", check_positive(params["timeout_s"])),
    ]
    run_probe_module(module, checks, run, (ValueError,))


if __name__ == "__main__":
    main()

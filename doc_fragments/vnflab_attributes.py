# Copyright: vnflab contributors
# Apache License 2.0
"""The attributes every vnflab module declares (the action_common_attributes pattern of ansible-core and
community.docker): what each attribute means, and that no vnflab module shows a diff. A module extends
C(vnflab_attributes) and says only how it supports check mode: C(vnflab_attributes.check_mode_full) where it
supports it fully, C(vnflab_attributes.check_mode_instances) where it starts instances (it validates them in check
mode), its own C(attributes.check_mode) (support and details) otherwise."""

from __future__ import annotations


class ModuleDocFragment:
    DOCUMENTATION = r"""
attributes:
  check_mode:
    description: Can run in check mode and say whether it would change the host, without changing it.
  diff_mode:
    description: Shows what changed (or would change) with C(--diff).
    support: none
"""

    CHECK_MODE_FULL = r"""
attributes:
  check_mode:
    support: full
"""

    CHECK_MODE_INSTANCES = r"""
attributes:
  check_mode:
    support: partial
    details: Validates the driver and parameters and starts nothing.
"""

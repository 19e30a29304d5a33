"""Make the repo's module_utils importable as ``ansible.module_utils.<name>`` in tests.

Ansible ships ``module_utils/vnflab_host`` to lab hosts as ``ansible.module_utils.vnflab_host``; tests import
it under the same name. With ansible-core installed, the repo's ``module_utils`` directory is added
to ``ansible.module_utils.__path__``; without it, minimal ``ansible`` and ``ansible.module_utils``
namespace packages pointing there are created.

The controller package ``analysis/vnflab`` (imported as ``vnflab``) is put on sys.path when it is
not installed (``pip install -e .`` makes that unnecessary).
"""

from __future__ import annotations

import sys
import types
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
MODULE_UTILS_DIR = REPO_ROOT / "module_utils"
ANALYSIS_DIR = REPO_ROOT / "analysis"


def install_module_utils_path(module_utils_dir: Path = MODULE_UTILS_DIR) -> None:
    """Let ``import ansible.module_utils.vnflab_host`` resolve to ``module_utils_dir/vnflab_host``."""
    directory = str(module_utils_dir)
    try:
        from ansible import module_utils
    except ImportError:
        ansible_pkg = sys.modules.setdefault("ansible", types.ModuleType("ansible"))
        if not hasattr(ansible_pkg, "__path__"):
            ansible_pkg.__path__ = []
        module_utils = types.ModuleType("ansible.module_utils")
        module_utils.__path__ = []
        sys.modules["ansible.module_utils"] = module_utils
        ansible_pkg.module_utils = module_utils  # type: ignore[attr-defined]
    if directory not in module_utils.__path__:
        module_utils.__path__.append(directory)


def install_analysis_path(analysis_dir: Path = ANALYSIS_DIR) -> None:
    """Let ``import vnflab`` find the repo's controller package if it is not installed."""
    import importlib.util

    if importlib.util.find_spec("vnflab") is None and str(analysis_dir) not in sys.path:
        sys.path.insert(0, str(analysis_dir))


install_module_utils_path()
install_analysis_path()

#!/usr/bin/python
# Copyright: vnflab contributors
# Apache License 2.0
"""Ansible module: one pinned upstream source tree, from git or from a checked source mirror."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: vnflab_source
short_description: Place a pinned upstream source tree, from git or from a source mirror checked against SHA256SUMS
description:
  - Makes O(dest) hold the source O(name) at exactly O(version).
  - With O(mirror) empty the tree is fetched from O(git_url) at that commit (C(git fetch --depth 1) of the commit
    itself, then the checked-out commit is compared with the pin).
  - With O(mirror) set, the file O(archive) is taken from the mirror (a directory on the managed host, or an
    C(http://), C(https://) or C(file://) URL base), its SHA-256 is checked against the mirror's C(SHA256SUMS)
    (and against O(sha256) when given), and its one top folder becomes O(dest). A Debian source package
    (O(archive) ending in C(.dsc)) also takes the files its C(Checksums-Sha256) field lists, each checked, and is
    unpacked with C(dpkg-source -x).
  - A stamp file in O(dest) records name, version and origin; a second run with the same inputs changes nothing.
    Whatever else was at O(dest) (an empty submodule folder, another version) is replaced.
  - Nothing else is downloaded.
version_added: "0.2.0"
author: vnflab contributors
options:
  name:
    description: Name of the source (used in messages and as the folder name of an unpacked C(.dsc)).
    type: str
    required: true
  dest:
    description: Folder that holds the tree afterwards (absolute path on the managed host).
    type: path
    required: true
  version:
    description:
      - The pin. A full 40-digit git commit id; for a Debian source package, its version (e.g. C(4.17.5-1)).
    type: str
    required: true
  git_url:
    description: Upstream git repository, used when O(mirror) is empty.
    type: str
    default: ""
  mirror:
    description: Source mirror (directory on the managed host or URL base); empty to use O(git_url).
    type: str
    default: ""
  archive:
    description: File name of the source's archive in the mirror (C(.tar.gz), C(.tar.xz), or a C(.dsc)).
    type: str
    default: ""
  sha256:
    description: Expected SHA-256 of O(archive), checked beside the mirror's C(SHA256SUMS); empty trusts the latter.
    type: str
    default: ""
extends_documentation_fragment:
  - vnflab_attributes
attributes:
  check_mode:
    support: full
    details: Verifies the mirror's file against C(SHA256SUMS) without unpacking; git sources are not contacted.
notes:
  - Archives are unpacked into a temporary folder beside O(dest) and moved into place, so an interrupted run
    leaves no half tree at O(dest).
requirements:
  - git (git sources), dpkg-dev (Debian source packages)
"""

EXAMPLES = r"""
- name: OSv at its pinned commit, from a source mirror on the build host
  vnflab_source:
    name: osv
    dest: /var/cache/vnflab/osv/src/osv
    version: 0e34e4dc2b278b7f64e4169abbf297b7de46fb6b
    git_url: https://github.com/cloudius-systems/osv.git
    mirror: /srv/vnflab-sources
    archive: osv.tar.gz

- name: The same from upstream git
  vnflab_source:
    name: osv
    dest: /var/cache/vnflab/osv/src/osv
    version: 0e34e4dc2b278b7f64e4169abbf297b7de46fb6b
    git_url: https://github.com/cloudius-systems/osv.git
"""

RETURN = r"""
path:
  description: The tree's folder (O(dest)).
  returned: always
  type: str
origin:
  description: Where it came from (mirror file or git URL with commit).
  returned: always
  type: str
  sample: /srv/vnflab-sources/osv.tar.gz
sha256:
  description: SHA-256 of the mirror archive (the commit id for git sources); empty when it was already in place
    before stamps recorded it.
  returned: always
  type: str
version:
  description: The pin that is in place.
  returned: always
  type: str
"""

import os
import shutil

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.urls import open_url
from ansible.module_utils.vnflab_host.sources import Source, SourceError, ensure


def fetch(url: str, path: str) -> None:
    with open_url(url, timeout=60) as response, open(path, "wb") as out:
        shutil.copyfileobj(response, out)


def main() -> None:
    module = AnsibleModule(
        argument_spec=dict(
            name=dict(type="str", required=True),
            dest=dict(type="path", required=True),
            version=dict(type="str", required=True),
            git_url=dict(type="str", default=""),
            mirror=dict(type="str", default=""),
            archive=dict(type="str", default=""),
            sha256=dict(type="str", default=""),
        ),
        supports_check_mode=True,
    )
    params = module.params
    if not os.path.isabs(params["dest"]):
        module.fail_json(msg=f"dest: {params['dest']} must be an absolute path")
    source = Source(name=params["name"], version=params["version"], git_url=params["git_url"],
                    mirror=params["mirror"], archive=params["archive"], sha256=params["sha256"].lower())
    try:
        result = ensure(source, params["dest"], check_mode=module.check_mode, fetch=fetch)
    except SourceError as exc:
        module.fail_json(msg=str(exc), name=source.name, origin=source.origin)
    module.exit_json(**result.as_dict())


if __name__ == "__main__":
    main()

# Copyright: vnflab contributors
# Apache License 2.0
"""The platform driver: start N VNF instances concurrently, know their addresses, stop them, weigh them.

Ansible ships only statically imported module_utils to a lab host, so a platform's driver is a
*specification* (a dict its role publishes as the fact ``vnflab_driver``) run by this one engine.
Command templates are argv lists; ``${name}``, ``${index}``, ``${address}``, ``${prefix_len}``,
``${gateway}`` and ``${mac}`` are replaced per instance (``string.Template`` syntax, so Go or Jinja
braces in commands are left alone).
"""

from __future__ import annotations

import ipaddress
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from string import Template
from typing import Any, Callable, Mapping, Sequence

from ansible.module_utils.vnflab_host import meminfo

REQUIRED_KEYS = ("name", "label", "instance_prefix", "network", "start", "stop")
COMMAND_KEYS = ("start", "stop", "pid", "memory_kib", "health", "migrate")
HEALTH_DEAD = 1  # the exit status of a health command that found its instance dead
# A health check answers in seconds or not at all: one that hung (a checker deadlocked in a nested dom0)
# is no verdict after this long, rather than holding the prober's last check for the whole command timeout.
HEALTH_TIMEOUT_S = 30.0
# How the boot probe treats a platform unless its driver says otherwise (the driver's optional "probe" key):
# an echo request to each pending address every millisecond, and every instance answering within 300 s.
DEFAULT_POLL_INTERVAL_MS = 1.0
DEFAULT_BOOT_TIMEOUT_S = 300.0
PROBE_NUMBER_KEYS = ("poll_interval_ms", "boot_timeout_s", "boot_timeout_per_instance_s")  # positive numbers
PROBE_KEYS = (*PROBE_NUMBER_KEYS, "after_start")

Runner = Callable[..., "subprocess.CompletedProcess[str]"]


class DriverError(Exception):
    """A platform command failed or the driver specification is invalid."""


class StartError(DriverError):
    """One or more instances did not start: the platform failed, the parameters were fine.

    The probe modules report it with ``start_failed: true`` so the controller can journal the failed
    batch and measure it again (see ``repeat.max_failed_batches``), and with the ``stop_errors`` of the
    batch, so the controller knows whether an instance may have been left running.
    """

    stop_errors: list[str] = []

    @classmethod
    def of(cls, instances: Sequence[Instance], stop_errors: Sequence[str] = ()) -> StartError | None:
        """The error for the instances whose start command failed, or None when all started."""
        failed = [inst for inst in instances if inst.start_error]
        if not failed:
            return None
        first = failed[0]
        message = f"{len(failed)} of {len(instances)} instances failed to start: {first.name}: {first.start_error}"
        if stop_errors:
            message += f" (and {len(stop_errors)} stop error(s): {stop_errors[0]})"
        error = cls(message)
        error.stop_errors = list(stop_errors)
        return error


@dataclass
class Instance:
    index: int
    name: str
    address: str
    mac: str
    start_ns: int = 0
    started_ns: int = 0
    start_error: str = ""


@dataclass
class InstanceMemory:
    name: str
    pss_mb: float | None = None
    cgroup_mb: float | None = None
    hypervisor_mb: float | None = None
    pids: list[int] = field(default_factory=list)


def validate_spec(spec: Mapping[str, Any]) -> list[str]:
    """Return the problems of a driver specification (empty list when valid)."""
    problems = [f"missing key '{key}'" for key in REQUIRED_KEYS if key not in spec]
    for key in COMMAND_KEYS:
        value = spec.get(key)
        if value is not None and (not isinstance(value, list) or not value or
                                  not all(isinstance(arg, (str, int)) for arg in value)):
            problems.append(f"'{key}' must be a non-empty list of strings (an argv template)")
    chain = spec.get("chain")
    if chain is not None:  # the chain metric: one hop's start (options appended) and stop (name appended)
        if not isinstance(chain, Mapping):
            problems.append("'chain' must be a mapping with 'start' and 'stop' argv lists")
        else:
            for key in ("start", "stop"):
                value = chain.get(key)
                if not isinstance(value, list) or not value or not all(isinstance(arg, (str, int)) for arg in value):
                    problems.append(f"'chain.{key}' must be a non-empty list of strings (an argv)")
    probe = spec.get("probe", {})
    if not isinstance(probe, Mapping):
        problems.append("'probe' must be a mapping")
    else:
        problems += [f"unknown 'probe' key '{key}' (known: {', '.join(PROBE_KEYS)})" for key in probe
                     if key not in PROBE_KEYS]
        if "after_start" in probe and not isinstance(probe["after_start"], bool):
            problems.append(f"'probe.after_start' must be true or false, got {probe['after_start']!r}")
        for key in PROBE_NUMBER_KEYS:
            if key in probe and not _is_positive_number(probe[key]):
                problems.append(f"'probe.{key}' must be a positive number, got {probe[key]!r}")
    network = spec.get("network")
    if network is not None:
        try:
            net = ipaddress.ip_network(str(network.get("cidr")), strict=True)
        except (AttributeError, ValueError) as exc:
            problems.append(f"'network.cidr' is not a network: {exc}")
        else:
            if not net.subnet_of(ipaddress.ip_network("198.18.0.0/15")):
                problems.append(f"'network.cidr' {net} is outside the benchmarking range 198.18.0.0/15")
    return problems


def _is_positive_number(value: Any) -> bool:
    try:
        return float(value) > 0 and float(value) != float("inf")
    except (TypeError, ValueError):
        return False


def instance_mac(address: str) -> str:
    """A locally administered unicast MAC derived from the instance's IPv4 address."""
    octets = ipaddress.IPv4Address(address).packed
    return "02:00:" + ":".join(f"{byte:02x}" for byte in octets)


class PlatformDriver:
    """Runs one platform's driver specification."""

    def __init__(self, spec: Mapping[str, Any], runner: Runner = subprocess.run,
                 command_timeout_s: float = 600.0) -> None:
        problems = validate_spec(spec)
        if problems:
            raise DriverError("invalid driver specification: " + "; ".join(problems))
        self.spec = spec
        self._run = runner
        self._timeout = command_timeout_s
        network = spec["network"]
        self._net = ipaddress.ip_network(str(network["cidr"]))
        self._first_host = int(network.get("first_host", 2))
        gateway = network.get("gateway") or str(self._net.network_address + 1)
        self.gateway = str(gateway)

    @property
    def name(self) -> str:
        return str(self.spec["name"])

    @property
    def label(self) -> str:
        return str(self.spec["label"])

    @property
    def capacity(self) -> int:
        """How many instance addresses the instance network holds."""
        return self._net.num_addresses - 1 - self._first_host

    def poll_interval_ms(self, requested: float | None = None) -> float:
        """Interval between echo requests to one pending address: the module's option, else the driver's.

        A platform whose prober shares a small CPU with the instances it waits for (a Xen dom0 nested in
        emulated hardware) polls less often, so that the probe does not slow down what it measures.
        """
        if requested is not None:
            return float(requested)
        return float(self.spec.get("probe", {}).get("poll_interval_ms", DEFAULT_POLL_INTERVAL_MS))

    def boot_timeout_s(self, count: int, requested: float | None = None) -> float:
        """How long N instances may take to answer: the module's option, else base + per instance x N.

        Where a platform starts its instances one after the other (xl create under libxl's lock), the
        time for all of them grows with N: a fixed deadline would record the last ones as lost.
        """
        if requested is not None:
            return float(requested)
        probe = self.spec.get("probe", {})
        return (float(probe.get("boot_timeout_s", DEFAULT_BOOT_TIMEOUT_S))
                + float(probe.get("boot_timeout_per_instance_s", 0.0)) * count)

    def ready_to_poll(self, instances: Sequence[Instance]) -> Callable[[str], bool] | None:
        """What the boot prober may poll: every address (None), or, where the driver's ``probe.after_start`` is
        true (a start command that returns once the instance serves), those whose start command returned."""
        if not self.spec.get("probe", {}).get("after_start", False):
            return None
        by_address = {inst.address: inst for inst in instances}
        return lambda address: by_address[address].started_ns > 0

    def instances(self, count: int) -> list[Instance]:
        if count < 1:
            raise DriverError("count must be at least 1")
        if count > self.capacity:
            raise DriverError(f"count {count} exceeds the {self.capacity} addresses of {self._net}")
        result = []
        for index in range(count):
            address = str(self._net.network_address + self._first_host + index)
            name = f"{self.spec['instance_prefix']}{index}"
            result.append(Instance(index=index, name=name, address=address, mac=instance_mac(address)))
        return result

    def render(self, key: str, instance: Instance) -> list[str]:
        fields = {
            "name": instance.name, "index": str(instance.index), "address": instance.address,
            "prefix_len": str(self._net.prefixlen), "gateway": self.gateway, "mac": instance.mac,
        }
        return [Template(str(arg)).safe_substitute(fields) for arg in self.spec[key]]

    def _command(self, key: str, instance: Instance,
                 timeout_s: float | None = None) -> subprocess.CompletedProcess[str]:
        argv = self.render(key, instance)
        try:
            # errors="replace": a command's output is for messages only, and bytes that are no UTF-8 (a
            # crashing process in a nested dom0 printed some) must not turn a started instance into a failure.
            return self._run(argv, capture_output=True, text=True, errors="replace",
                             timeout=timeout_s or self._timeout, check=False)
        except (OSError, ValueError, subprocess.SubprocessError) as exc:
            # ValueError: e.g. a NUL byte in an argument. Reported as the command's failure, never lost
            # in a worker thread.
            return subprocess.CompletedProcess(argv, 127, "", f"{type(exc).__name__}: {exc}")

    def _start_one(self, instance: Instance) -> Instance:
        instance.start_ns = time.clock_gettime_ns(time.CLOCK_REALTIME)
        done = self._command("start", instance)
        instance.started_ns = time.clock_gettime_ns(time.CLOCK_REALTIME)
        if done.returncode != 0:
            instance.start_error = (done.stderr or done.stdout or f"exit {done.returncode}").strip()
        return instance

    def start(self, instances: Sequence[Instance], max_parallel: int | None = None) -> ThreadPoolExecutor:
        """Issue every start command concurrently and return at once; call ``wait_started`` later.

        Each instance records ``start_ns`` (CLOCK_REALTIME) just before its start command runs.
        """
        workers = max(1, min(len(instances), max_parallel or int(self.spec.get("max_parallel", 0)) or len(instances)))
        pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="vnflab-start")
        for instance in instances:
            pool.submit(self._start_one, instance)
        return pool

    @staticmethod
    def wait_started(pool: ThreadPoolExecutor) -> None:
        pool.shutdown(wait=True)

    def stop(self, instances: Sequence[Instance]) -> list[str]:
        """Stop every instance concurrently; return the error messages (empty when all stopped)."""
        if not instances:
            return []
        with ThreadPoolExecutor(max_workers=min(len(instances), 32), thread_name_prefix="vnflab-stop") as pool:
            results = list(pool.map(lambda inst: (inst, self._command("stop", inst)), instances))
        return [f"{inst.name}: {(done.stderr or done.stdout or f'exit {done.returncode}').strip()}"
                for inst, done in results if done.returncode != 0]

    def failure(self, instance: Instance) -> str | None:
        """Why a started instance can no longer answer (its start failed, or it crashed), or None.

        A failed start command is a failure at once. Once the start command has returned, the optional
        ``health`` command is asked: exit 0 = alive (perhaps still booting), exit 1 = dead, its output
        saying why (a kernel panic, a container that exited); any other exit (the check crashed or could
        not run, or did not answer within ``HEALTH_TIMEOUT_S``) is no verdict. Instances whose start command
        has not returned yet are never judged.
        """
        if instance.start_error:
            return instance.start_error
        if not instance.started_ns or "health" not in self.spec:
            return None
        done = self._command("health", instance, timeout_s=min(self._timeout, HEALTH_TIMEOUT_S))
        if done.returncode != HEALTH_DEAD:
            # 0: alive. Anything else is no verdict: the check itself failed (a crash, exit 139, of the
            # checker in a nested dom0 must not fail a healthy domain); the instance is still waited for.
            return None
        return (done.stderr or done.stdout or f"health check exit {done.returncode}").strip()

    def main_pid(self, instance: Instance) -> int | None:
        if "pid" not in self.spec:
            return None
        done = self._command("pid", instance)
        text = done.stdout.strip()
        if done.returncode != 0 or not text.isdigit() or int(text) <= 0:
            return None
        return int(text)

    def memory(self, instance: Instance) -> InstanceMemory:
        """PSS of the instance's processes, its cgroup's usage and the hypervisor's view, in MB."""
        result = InstanceMemory(name=instance.name)
        pid = self.main_pid(instance)
        if pid is not None:
            pids = [pid]
            if self.spec.get("own_cgroup"):
                cgroup = meminfo.process_memory_cgroup(pid)
                if cgroup is not None:
                    version, path = cgroup
                    result.cgroup_mb = meminfo.read_int_file(
                        meminfo.cgroup_memory_file(version, path)) / 2**20
                    pids = meminfo.read_pids(meminfo.cgroup_procs_file(version, path)) or pids
            result.pids = pids
            result.pss_mb = sum(meminfo.process_pss_kib(p) for p in pids) / meminfo.KIB_PER_MB
        if "memory_kib" in self.spec:
            done = self._command("memory_kib", instance)
            text = done.stdout.strip()
            if done.returncode == 0 and text.replace(".", "", 1).isdigit():
                result.hypervisor_mb = float(text) / meminfo.KIB_PER_MB
        return result


def failed_instances(driver: PlatformDriver, instances: Sequence[Instance]) -> Callable[[list[str]], dict[str, str]]:
    """The boot prober's ``give_up``: of the pending addresses, those whose instance failed to start or died."""
    by_address = {inst.address: inst for inst in instances}

    def give_up(pending: list[str]) -> dict[str, str]:
        found: dict[str, str] = {}
        for address in pending:
            instance = by_address.get(address)
            reason = driver.failure(instance) if instance is not None else None
            if reason is not None:
                found[address] = reason
        return found

    return give_up


def mark_given_up(instances: Sequence[Instance], given_up: Mapping[str, str]) -> None:
    """Make the instances the prober gave up on failed starts ("died while booting: ..." unless their start
    command failed), so ``StartError.of`` reports the batch to be journaled and measured again."""
    for instance in instances:
        reason = given_up.get(instance.address)
        if reason is not None and not instance.start_error:
            instance.start_error = f"died while booting: {reason}"


def server_available_mb(spec: Mapping[str, Any], runner: Runner = subprocess.run) -> float:
    """Memory still available to new instances on the VNF server, in MB.

    MemAvailable of the server's kernel by default; a driver whose instances do not draw from
    that kernel (Xen domUs draw from the hypervisor) names an argv printing the MB instead.
    """
    argv = spec.get("server_available_mb")
    if not argv:
        return meminfo.mem_available_mb()
    done = runner([str(arg) for arg in argv], capture_output=True, text=True, errors="replace", timeout=60,
                  check=False)
    try:
        return float(done.stdout.strip())
    except ValueError as exc:
        raise DriverError(f"server_available_mb printed {done.stdout.strip()!r}: {done.stderr.strip()}") from exc

# Copyright: vnflab contributors
# Apache License 2.0
"""The lab's limits and defaults, in one place: read by the probe modules (``ansible.module_utils.vnflab_host.limits``),
by the validate play (through the ``vnflab_limit`` filter) and by the controller package (``vnflab.limits``, a link
to this file).

Plain constants, no imports: this file runs on the lab hosts (Python >= 3.9) as well as on the controller.
"""

#: Most instances one point may start (vnflab_boot_counts, vnflab_memory_counts, count of the modules).
MAX_INSTANCES = 1024
#: Largest ICMP or UDP payload over IPv4 in bytes (vnflab_response_sizes, sizes of vnf_response_time).
MAX_PAYLOAD = 65507
#: The boot prober's bound on echo requests per second (max_pps).
MAX_PPS = 10**7
#: Payload sizes of the response-time sweep when the task names none.
DEFAULT_SIZES = (64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384, 32768, 65507)

#: Defaults of the stopping rule's keys in vnflab_repeat.<metric> (min_samples and max_samples have none).
REPEAT_DEFAULTS = {
    "rel_half_width": 0.05,  # target CI half-width relative to the mean
    "confidence": 0.95,  # confidence level of the interval
    "max_failed_batches": 2,  # batches of one point that may fail to start an instance
    "max_loss_fraction": 0.05,  # response time: lost requests through the proxy a point may have
}
REL_HALF_WIDTH = REPEAT_DEFAULTS["rel_half_width"]
CONFIDENCE = REPEAT_DEFAULTS["confidence"]
MAX_FAILED_BATCHES = REPEAT_DEFAULTS["max_failed_batches"]
MAX_LOSS_FRACTION = REPEAT_DEFAULTS["max_loss_fraction"]

#: Everything above by the name the vnflab_limit filter takes ('max_instances' | vnflab_limit).
LIMITS = {
    "max_instances": MAX_INSTANCES,
    "max_payload": MAX_PAYLOAD,
    "max_pps": MAX_PPS,
    "default_sizes": list(DEFAULT_SIZES),
    "repeat_defaults": dict(REPEAT_DEFAULTS),
}

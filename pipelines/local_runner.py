"""Beam's FnApiRunner with its multi_processing workers forked from a zygote (pipelines/zygote.py).

Everything else is Beam's runner unchanged: the same stages, bundles, shuffles, worker count
(`--direct_num_workers`) and worker settings (state cache, log level: each worker receives the
pipeline options as a spawned one would). Only how a worker process comes to exist differs.
The in_memory and multi_threading modes, and pipelines whose environment is not Beam's default
local worker, run exactly as on FnApiRunner.
"""

from __future__ import annotations

import os
import sys
import threading
from typing import Any

import grpc
from apache_beam.options import pipeline_options
from apache_beam.portability import python_urns
from apache_beam.portability.api import beam_fn_api_pb2_grpc, beam_runner_api_pb2, endpoints_pb2
from apache_beam.runners.portability.fn_api_runner import worker_handlers
from apache_beam.runners.portability.fn_api_runner.fn_runner import FnApiRunner, RunnerResult
from apache_beam.runners.portability.local_job_service import BeamFnLoggingServicer
from apache_beam.utils import thread_pool_executor
from google.protobuf import json_format, text_format

from medcurate.pipelines.zygote import (
    FORKED_URN,
    SPAWNED_COMMAND,
    STAGE_PRELOAD,
    Zygote,
    fork_safe,
    new_zygote_key,
)

_ZYGOTES: dict[str, Zygote] = {}


def worker_preload() -> list[str]:
    """What the zygote imports: this package's modules the command has imported (the pipeline's
    DoFns live there), and the modules its stages import when they load their models."""
    ours = sorted(name for name in sys.modules if name.startswith("medcurate.") and "__main__" not in name)
    return [*ours, *STAGE_PRELOAD]


@worker_handlers.WorkerHandler.register_environment(FORKED_URN, bytes)
class ForkedWorkerHandler(worker_handlers.GrpcWorkerHandler):
    """Starts a worker by asking the run's zygote to fork one. Mirrors Beam's
    SubprocessSdkWorkerHandler: a logging server per worker, the pipeline options and endpoints in
    the worker's environment, and a thread that waits for the worker to end."""

    def __init__(self, payload: bytes, state: Any, provision_info: Any, grpc_server: Any) -> None:
        super().__init__(state, provision_info, grpc_server)
        self._zygote = _ZYGOTES[payload.decode()]
        self._thread: threading.Thread | None = None

    def start_worker(self) -> None:
        logging_server = grpc.server(
            thread_pool_executor.shared_unbounded_instance(),
            options=[("grpc.http2.max_pings_without_data", 0), ("grpc.http2.max_ping_strikes", 0)],
        )
        logging_port = logging_server.add_insecure_port("[::]:0")
        beam_fn_api_pb2_grpc.add_BeamFnLoggingServicer_to_server(BeamFnLoggingServicer(), logging_server)
        logging_server.start()
        env = {
            "CONTROL_API_SERVICE_DESCRIPTOR": text_format.MessageToString(
                endpoints_pb2.ApiServiceDescriptor(url=self.control_address)
            ),
            "LOGGING_API_SERVICE_DESCRIPTOR": text_format.MessageToString(
                endpoints_pb2.ApiServiceDescriptor(url=f"localhost:{logging_port}")
            ),
            "PIPELINE_OPTIONS": json_format.MessageToJson(
                self.provision_info.provision_info.pipeline_options
            ),
        }
        if self.worker_id:
            env["WORKER_ID"] = self.worker_id
        worker_id = self.worker_id or new_zygote_key()
        try:
            self._zygote.start_worker(worker_id, env)
        except Exception:
            logging_server.stop(0)
            raise

        def wait() -> None:
            try:
                code = self._zygote.wait_worker(worker_id)
                if code:
                    raise RuntimeError(f"Worker process exited with return code {code}")
            finally:
                logging_server.stop(0)

        self._thread = threading.Thread(name="run_worker", target=wait, daemon=True)
        self._thread.start()

    def stop_worker(self) -> None:
        if self._thread is not None:
            self._thread.join()


class LocalRunner(FnApiRunner):
    """FnApiRunner whose multi_processing workers are forked from a zygote that has imported Beam,
    pyarrow, DuckDB, spaCy and medcurate once, so every worker shares those pages."""

    def run_via_runner_api(
        self,
        pipeline_proto: beam_runner_api_pb2.Pipeline,
        options: pipeline_options.PipelineOptions,
    ) -> RunnerResult:
        spawned = [
            env
            for env in pipeline_proto.components.environments.values()
            if env.urn == python_urns.SUBPROCESS_SDK and env.payload.decode() == SPAWNED_COMMAND
        ]
        if not spawned:
            return super().run_via_runner_api(pipeline_proto, options)
        key = new_zygote_key()
        # Forked from this process when it is safe: the zygote then shares what the command has
        # imported as well; otherwise a fresh interpreter imports it all once for the workers.
        with Zygote(worker_preload(), env=zygote_environment(), fork=fork_safe()) as zygote:
            _ZYGOTES[key] = zygote
            try:
                for env in spawned:
                    env.urn, env.payload = FORKED_URN, key.encode()
                return super().run_via_runner_api(pipeline_proto, options)
            finally:
                del _ZYGOTES[key]


def zygote_environment() -> dict[str, str]:
    """The command's environment plus the allocator settings of local workers (each unless the
    user set it): glibc reads them when a process starts, so the zygote must start with them."""
    from medcurate.pipelines.options import WORKER_MALLOC

    return {**WORKER_MALLOC, **os.environ}

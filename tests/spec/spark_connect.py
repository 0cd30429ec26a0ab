"""A real Spark Connect server for the spec tests, started from the installed PySpark.

PySpark 4 ships the Connect server (``jars/spark-connect_*.jar``) and ``bin/spark-submit``, so
``pip install -e '.[dev]'`` and a Java runtime are all a clean clone needs. The server runs
``local[2]`` with 1 GB of driver memory on a free loopback port, in its own process group so
that stopping it also stops the JVM that ``spark-submit`` starts.

Only a chosen subset of the spec tests (``CONNECT_SPEC_TESTS``: one or more per kind of rule)
also runs on it: the whole suite on one more Spark would cost minutes.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from brygga.cohort.engines import stop_spark_session

SERVER_CLASS = "org.apache.spark.sql.connect.service.SparkConnectServer"
START_TIMEOUT = 180.0  # seconds; the JVM and Spark start in 10-20 s on an idle machine
STOP_TIMEOUT = 30.0

# Spec tests (module, function) that also run on Spark Connect: at least one per kind of rule.
CONNECT_SPEC_TESTS = {
    ("test_criteria_spec", name)
    for name in (
        "test_population_alive_and_under_observation_at_the_index_date",
        "test_sex_and_municipality",  # demographics
        "test_icd10_codes_match_by_prefix_within_their_vocabulary",
        "test_window_boundaries_are_inclusive",
        "test_min_count_counts_distinct_dates",
        "test_measurement_value_range_inclusive_and_missing_values_never_match",
        "test_latest_measurement",
        "test_latest_smoking_status_among_all_statuses",
        "test_visits_by_type_and_count",
        "test_death_after_the_index_date",
        "test_omop_concepts_match_with_descendants_through_concept_ancestor",
        "test_groups_any_all_at_least_and_nesting",
        "test_attrition_and_cells_agree",
    )
}


@dataclass(frozen=True)
class ConnectServer:
    url: str
    process: subprocess.Popen[bytes]
    log: Path


def spark_home() -> Path:
    import pyspark

    return Path(pyspark.__file__).parent


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def accepts(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(1.0)
        return s.connect_ex(("127.0.0.1", port)) == 0


def log_tail(path: Path, lines: int = 40) -> str:
    if not path.exists():
        return "(no log)"
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


def start_server(workdir: Path, timeout: float = START_TIMEOUT) -> ConnectServer:
    """Start a Connect server and wait until its port accepts connections."""
    home = spark_home()
    port = free_port()
    conf = {
        "spark.connect.grpc.binding.address": "127.0.0.1",
        "spark.connect.grpc.binding.port": str(port),
        "spark.driver.host": "127.0.0.1",
        "spark.driver.bindAddress": "127.0.0.1",
        "spark.ui.enabled": "false",
        "spark.sql.shuffle.partitions": "4",
        # Short-lived server on tiny data: the quick JIT and a one-thread GC roughly halve
        # start-up and the first queries on two busy cores.
        "spark.driver.extraJavaOptions": "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC",
    }
    command = ["bash", str(home / "bin" / "spark-submit"), "--class", SERVER_CLASS]
    command += ["--name", "brygga-spec-connect", "--master", "local[2]", "--driver-memory", "1g"]
    for key, value in conf.items():
        command += ["--conf", f"{key}={value}"]
    # As sbin/start-connect-server.sh: the server itself is a classic Spark application.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SPARK_", "PYSPARK_"))}
    env |= {"SPARK_HOME": str(home), "SPARK_CONNECT_MODE": "0", "SPARK_LOCAL_IP": "127.0.0.1"}
    log = workdir / "server.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            command,
            cwd=workdir,  # spark-warehouse and the like stay out of the checkout
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    server = ConnectServer(f"sc://127.0.0.1:{port}", process, log)
    deadline = time.monotonic() + timeout
    while not accepts(port):
        if process.poll() is not None or time.monotonic() > deadline:
            why = (
                f"exited with status {process.returncode}"
                if process.poll() is not None
                else f"did not accept connections on port {port} within {timeout:.0f} s"
            )
            stop_server(server)
            pytest.fail(f"Spark Connect server {why}; log {log}:\n{log_tail(log)}", pytrace=False)
        time.sleep(0.5)
    return server


def stop_server(server: ConnectServer) -> None:
    """Stop the server's process group (spark-submit and its JVM); kill it if it lingers."""
    if server.process.poll() is None:
        os.killpg(server.process.pid, signal.SIGTERM)
        try:
            server.process.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            os.killpg(server.process.pid, signal.SIGKILL)
            server.process.wait()


@pytest.fixture(scope="session")
def spark_connect_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The URL of a Spark Connect server that lives for the test session."""
    server = start_server(tmp_path_factory.mktemp("spark-connect"))
    try:
        yield server.url
    finally:
        try:
            stop_spark_session(server.url)
        finally:
            stop_server(server)

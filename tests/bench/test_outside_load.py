"""The outside-load stage: reading wrk's report, combining its turns, the agreement target, and
the wrk script (against a small local server) posting events intake would accept."""

import os
import shutil
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import pytest
from prometheus_client import generate_latest

from bench.load import CpuUse, LoadResult
from bench.outside_load import (
    SCRIPT,
    Gathered,
    WrkMissing,
    WrkOutputUnreadable,
    WrkRun,
    answered_together,
    combined_runs,
    disagreement,
    figures,
    gathered_in,
    parse_wrk,
    run_wrk,
    wrk_command,
)
from bench.services import Service
from services.intake import metrics
from shared.events import event_adapter

REPORT = """\
Running 10s test @ http://127.0.0.1:40123/v1/reports/summary?root=350101000000&period=2018
  1 threads and 50 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency    15.91ms   20.60ms 482.07ms   91.02%
    Req/Sec     3.21k   420.52     3.90k    71.00%
  Latency Distribution
     50%  850.00us
     75%   16.40ms
     90%   31.22ms
     99%    1.39s
  32045 requests in 10.04s, 51.63MB read
  Socket errors: connect 0, read 0, write 0, timeout 2
  Non-2xx or 3xx responses: 3
Requests/sec:   3191.73
Transfer/sec:      5.14MB
Not 2xx responses: 5
"""


def test_the_report_gives_requests_time_percentiles_in_ms_and_what_went_wrong() -> None:
    run = parse_wrk(REPORT)
    assert run.requests == 32045
    assert run.seconds == pytest.approx(10.04)
    assert run.requests_per_second == pytest.approx(32045 / 10.04)
    assert run.latency_ms == pytest.approx({50: 0.85, 75: 16.4, 90: 31.22, 99: 1390.0})
    assert run.not_2xx == 5  # the script's count, which includes 3xx, not wrk's own
    assert run.socket_errors == {"connect": 0, "read": 0, "write": 0, "timeout": 2}


def test_a_report_without_the_scripts_count_of_answers_is_unreadable() -> None:
    without_count = REPORT.replace("Not 2xx responses: 5\n", "")
    with pytest.raises(WrkOutputUnreadable):
        parse_wrk(without_count)


def test_answers_other_than_2xx_or_socket_errors_fail_a_run() -> None:
    clean = parse_wrk(
        REPORT.replace("Not 2xx responses: 5", "Not 2xx responses: 0").replace(
            "  Socket errors: connect 0, read 0, write 0, timeout 2\n", ""
        )
    )
    assert clean.failure() is None
    assert "timeout" in (WrkRun(10, 1.0, {}, socket_errors={"timeout": 1}).failure() or "")
    assert "5 answers" in (parse_wrk(REPORT).failure() or "")


def test_turns_add_up_and_their_percentiles_are_weighted_by_requests() -> None:
    first = WrkRun(1000, 5.0, {50: 10.0, 99: 40.0}, client_cpu_seconds=0.5)
    second = WrkRun(3000, 5.0, {50: 2.0, 99: 8.0}, not_2xx=1, client_cpu_seconds=1.5)
    both = combined_runs([first, second])
    assert (both.requests, both.seconds, both.not_2xx) == (4000, 10.0, 1)
    assert both.requests_per_second == 400
    assert both.client_cores == pytest.approx(0.2)
    assert both.latency_ms == {50: 4.0, 99: 16.0}


def bench_load(per_second: float) -> LoadResult:
    return LoadResult(int(per_second * 10), int(per_second * 10), 10.0, [5.0, 9.0])


@pytest.mark.parametrize(
    ("wrk_per_second", "agree"), [(1140, True), (860, True), (1160, False), (840, False)]
)
def test_the_throughputs_must_agree_within_15_percent_either_way(
    wrk_per_second: float, agree: bool
) -> None:
    wrk = WrkRun(int(wrk_per_second * 10), 10.0, {50: 4.0, 99: 8.0})
    rate, apart, *_ = figures("county summary", bench=bench_load(1000), wrk=wrk)
    assert rate.ratio == pytest.approx(wrk_per_second / 1000)
    assert apart.met is agree


@pytest.mark.parametrize(
    ("generator_cores", "machine_share", "why"),
    [
        (0.95, 0.6, "set the pace, not the service"),
        (0.3, 0.95, "The machine was saturated"),
        (0.3, 0.6, "the difference is in latency per request"),
    ],
)
def test_when_they_disagree_the_note_says_what_was_saturated(
    generator_cores: float, machine_share: float, why: str
) -> None:
    bench = bench_load(1000)
    machine = machine_share * (os.cpu_count() or 1)
    bench.cpu = CpuUse(client=generator_cores, server=0.4, machine=machine)
    wrk = WrkRun(15000, 10.0, {50: 4.0, 99: 8.0}, client_cpu_seconds=1.0)
    note = disagreement("county summary", bench=bench, wrk=wrk, grouped=False)
    assert "1.50 × the bench's" in note
    assert why in note


def test_a_saturated_machine_names_the_group_the_service_shares_with_the_generators() -> None:
    bench = bench_load(1000)
    bench.cpu = CpuUse(client=0.3, server=0.2, machine=os.cpu_count() or 1)
    wrk = WrkRun(15000, 10.0, {50: 4.0, 99: 8.0}, client_cpu_seconds=1.0, server_cpu_seconds=4.0)
    note = disagreement("county summary", bench=bench, wrk=wrk, grouped=True)
    assert "together 0.50 cores under the bench's load, 0.50 under wrk" in note
    assert "autogroup" not in disagreement("county summary", bench=bench, wrk=wrk, grouped=False)


def test_intakes_statements_are_read_from_the_histogram_it_exposes() -> None:
    before = gathered_in(generate_latest().decode())
    metrics.gathered.observe(3)
    metrics.gathered.observe(5)
    after = gathered_in(generate_latest().decode())
    assert (after.statements - before.statements, after.events - before.events) == (2, 8)


def test_the_note_says_how_many_events_were_answered_together_and_how_far_apart_resent() -> None:
    bench = LoadResult(requests=4000, accepted_items=4000, elapsed=1.0, latencies_ms=[5.0])
    bench.cpu = CpuUse(client=0.5, server=0.7, machine=1.4)  # 125 µs a request
    wrk = WrkRun(5000, 1.0, {50: 4.0, 99: 8.0}, client_cpu_seconds=0.125)  # 25 µs
    note = answered_together(
        bench=bench, wrk=wrk, gathered=(Gathered(500, 4000), Gathered(500, 5000))
    )
    assert "8.0 events a statement under the bench's load, 10.0 under wrk" in note
    assert "125 µs of CPU a request on its one event loop (wrk 25 µs)" in note
    assert "about 1.0 ms after the first" in note


def test_without_wrk_the_stage_stops_saying_how_to_install_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(WrkMissing, match=r"bench/setup\.sh"):
        wrk_command()


# --- the script against a local server ------------------------------------------------------

needs_wrk = pytest.mark.skipif(shutil.which("wrk") is None, reason="wrk is not installed")


class Recorder(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # kept-alive connections, as wrk uses them
    seen: ClassVar[list[tuple[str, str, str, bytes]]] = []  # each subclass has its own
    status: ClassVar[int] = 200

    def answer(self, body: bytes) -> None:
        self.seen.append((self.command, self.path, self.headers["Authorization"], body))
        self.send_response(self.status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_POST(self) -> None:
        self.answer(self.rfile.read(int(self.headers["Content-Length"])))

    def do_GET(self) -> None:
        self.answer(b"")

    def log_message(self, *_: object) -> None:
        pass


@contextmanager
def recording_server(status: int) -> Iterator[tuple[Service, type[Recorder]]]:
    handler = type("Answering", (Recorder,), {"seen": [], "status": status})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield Service("recorder", url, os.getpid(), Path(os.devnull)), handler
    finally:
        server.shutdown()
        server.server_close()


@needs_wrk
async def test_the_script_posts_a_new_event_intake_accepts_with_each_key_in_turn(
    tmp_path: Path,
) -> None:
    data = tmp_path / "events.txt"
    data.write_text(
        "key first\nkey second\nvillage 350101001001\nvillage 350101001002\n"
        "destination township\ndestination county\noccurred_at 2018-06-03T09:30:00+08:00\n",
        encoding="utf-8",
    )
    with recording_server(202) as (service, handler):
        run = await run_wrk(
            url=f"{service.url}/v1/events",
            script=SCRIPT,
            args=[str(data), "0b6f0c5e-6a53-4b52-9d5e-"],
            connections=2,
            seconds=1,
            server=service,
        )
    assert run.requests > 10 and run.not_2xx == 0 and run.failure() is None
    events = [event_adapter.validate_json(body) for _, _, _, body in handler.seen]
    assert len({event.event_id for event in events}) == len(events)
    assert {event.unit_code for event in events} == {"350101001001", "350101001002"}
    assert {(method, path) for method, path, _, _ in handler.seen} == {("POST", "/v1/events")}
    assert {key for _, _, key, _ in handler.seen} == {"Bearer first", "Bearer second"}


@needs_wrk
async def test_the_script_reads_each_path_in_turn_and_counts_every_answer_not_2xx(
    tmp_path: Path,
) -> None:
    data = tmp_path / "reads.txt"
    data.write_text("key only\npath /one?x=1\npath /two?x=2\n", encoding="utf-8")
    with recording_server(302) as (service, handler):  # a 3xx, which wrk's own count leaves out
        run = await run_wrk(
            url=f"{service.url}/one?x=1",
            script=SCRIPT,
            args=[str(data)],
            connections=2,
            seconds=1,
            server=service,
        )
    assert run.requests > 10 and run.not_2xx == run.requests
    assert "not 2xx" in (run.failure() or "")
    assert {(method, path) for method, path, _, _ in handler.seen} == {
        ("GET", "/one?x=1"),
        ("GET", "/two?x=2"),
    }

"""RunControl: the pause, stop and time limit that --batch and the workbench share."""

import threading
import time

from dop_tui.run_control import RunControl


def test_pause_holds_the_stream_between_events_and_resume_releases_it():
    control = RunControl()
    seen: list[int] = []

    def consume() -> None:
        for ev in control.follow(iter(range(3))):
            seen.append(ev)
            if ev == 0:
                control.pause()

    worker = threading.Thread(target=consume)
    worker.start()
    time.sleep(0.3)
    assert seen == [0] and control.paused  # held after the event it paused on
    control.resume()
    worker.join(5)
    assert seen == [0, 1, 2] and not control.paused and control.paused_s >= 0.25


def test_stop_reaches_the_loops_controls_made_before_or_after():
    early = RunControl()
    early.stop()
    assert early.make_controls().stop.is_set()  # the loop sees a stop asked for before it started
    late = RunControl()
    controls = late.make_controls()
    late.pause()
    late.stop()
    assert controls.stop.is_set() and late.stopping and not late.paused  # a paused run resumes to finish


def test_the_time_limit_asks_the_loop_to_stop():
    control = RunControl(time_limit_s=0.1)
    controls = control.make_controls()

    def slow():
        for i in range(50):
            time.sleep(0.02)
            yield i

    list(control.follow(slow()))
    assert controls.stop.is_set() and control.stopping


def test_cancelled_ends_the_stream_at_once_and_closes_the_loop():
    closed = []

    def events():
        try:
            yield from range(100)
        finally:
            closed.append(True)

    control = RunControl()
    got = []
    for ev in control.follow(events(), cancelled=lambda: len(got) >= 2):
        got.append(ev)
    assert got == [0, 1] and closed == [True] and control.stopping

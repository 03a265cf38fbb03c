"""The compute pool: pure functions in a worker process, which may die and come back."""

from __future__ import annotations

import os
from concurrent.futures.process import BrokenProcessPool

import pytest

from server.compute import Compute


def _die() -> None:
    os._exit(3)  # a worker killed mid-call (out of memory, a signal)


async def test_a_dead_worker_fails_its_call_and_the_next_call_gets_a_new_one() -> None:
    compute = Compute()
    try:
        assert await compute.run(pow, 2, 10) == 1024
        with pytest.raises(BrokenProcessPool):
            await compute.run(_die)
        assert await compute.run(pow, 3, 3) == 27
    finally:
        compute.close()


async def test_an_exception_in_the_function_comes_back_as_itself() -> None:
    compute = Compute()
    try:
        with pytest.raises(ZeroDivisionError):
            await compute.run(divmod, 1, 0)
        assert await compute.run(divmod, 7, 2) == (3, 1)
    finally:
        compute.close()

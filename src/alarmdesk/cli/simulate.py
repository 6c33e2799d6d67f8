"""``alarmdesk simulate``: a realistic, reproducible feed for a running server."""

from __future__ import annotations

import asyncio
import math
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from alarmdesk.cli.common import err, fail, out
from alarmdesk.simulate import SimulationReport, run


def simulate(
    url: Annotated[
        str, typer.Option(help="Base URL of a running alarmdesk.")
    ] = "http://127.0.0.1:8000",
    rate: Annotated[float, typer.Option(min=0.01, help="Signals per second.")] = 2.0,
    duration: Annotated[
        float, typer.Option(min=0, help="Seconds to run; 0 runs until interrupted.")
    ] = 60.0,
    seed: Annotated[int, typer.Option(help="Same seed, same sequence of signals.")] = 1,
    run_id: Annotated[
        str | None,
        typer.Option(help="Prefix of idempotency keys (default: random, so runs never collide)."),
    ] = None,
    token: Annotated[
        str | None,
        typer.Option(envvar="ALARMDESK_TOKEN", help="API token with the intake role."),
    ] = None,
    token_file: Annotated[Path | None, typer.Option(help="Read the token from this file.")] = None,
) -> None:
    """Drives a running server with a realistic, reproducible feed."""
    if token_file is not None:
        try:
            token = token_file.read_text("utf-8").strip()
        except OSError as exc:
            fail(f"cannot read {token_file}: {exc}")
        except UnicodeDecodeError:
            fail(f"{token_file} is not a token (not UTF-8 text)")
    if not (math.isfinite(rate) and math.isfinite(duration)):
        fail("--rate and --duration are finite numbers")
    if not token:
        fail(
            "simulate needs an intake token: --token, --token-file or $ALARMDESK_TOKEN "
            "(create one with `alarmdesk tokens create --role intake --name simulator`)"
        )
    if not token.isascii() or not token.isprintable():
        fail("a token is printable ASCII (as `alarmdesk tokens create` prints it)")
    headers = {"Authorization": f"Bearer {token}"}
    total = int(rate * duration) if duration > 0 else None
    with Progress(
        TextColumn("[bold]simulating"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[status]}"),
        TimeElapsedColumn(),
        console=err,
        transient=False,
    ) as progress:
        task = progress.add_task("feed", total=total, status="")

        def update(r: SimulationReport) -> None:
            progress.update(
                task,
                completed=r.accepted + r.failed,
                status=f"accepted {r.accepted}, failed {r.failed}",
            )

        try:
            report = asyncio.run(
                run(
                    url,
                    rate,
                    duration,
                    seed=seed,
                    run_id=run_id,
                    on_progress=update,
                    headers=headers,
                )
            )
        except KeyboardInterrupt:
            raise typer.Exit(130) from None
    out.print(
        f"sent {report.sent}, accepted {report.accepted}, failed {report.failed} "
        f"in {report.seconds:.1f}s" + (f"; errors: {report.errors}" if report.errors else "")
    )
    if report.sent and report.accepted == 0:
        raise typer.Exit(1)

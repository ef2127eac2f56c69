"""python -m crime_assets.explorer [--port 8501] [--address 127.0.0.1] [other `streamlit run` options]

Starts the hotspot explorer's Streamlit server on the warehouse of CRIME_DATA_DIR (default ./data).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

APP = Path(__file__).with_name("app.py")


def streamlit_args(port: int, address: str, extra: list[str]) -> list[str]:
    """The `streamlit run` command line: no browser opened, no usage statistics, no reloading on file changes."""
    return ["streamlit", "run", str(APP), "--server.port", str(port), "--server.address", address,
            "--server.headless", "true", "--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none",
            "--client.toolbarMode", "minimal", *extra]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m crime_assets.explorer", description=__doc__.splitlines()[2])
    parser.add_argument("--port", type=int, default=8501, help="port to serve on (default 8501)")
    parser.add_argument("--address", default="127.0.0.1",
                        help="address to listen on (default 127.0.0.1; 0.0.0.0 in a container)")
    args, extra = parser.parse_known_args(argv)
    try:
        from streamlit.web import cli
    except ImportError:
        sys.exit('the explorer needs Streamlit: python -m pip install -c requirements.lock -e ".[explorer]"')
    sys.argv = streamlit_args(args.port, args.address, extra)
    cli.main()


if __name__ == "__main__":
    main()

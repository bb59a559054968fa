"""`python -m bot`: Sanad's entry point."""

from bot.cli import main

if __name__ == "__main__":
    raise SystemExit(main())

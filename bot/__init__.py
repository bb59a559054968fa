"""Sanad's composition root, its channels and its command line.

Time-zone data comes from the `tzdata` package, never from the system's files, which can be
stale: Morocco moved to permanent +00 in September 2026 and older system data still says +01.
This runs before anything in Sanad creates a ZoneInfo.
"""

import zoneinfo

zoneinfo.reset_tzpath(to=[])
zoneinfo.ZoneInfo.clear_cache()

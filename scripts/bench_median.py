"""Reads mqbench --json summary lines on stdin; prints the median of each figure."""
import json
import statistics
import sys

rows = [json.loads(line) for line in sys.stdin if line.strip()]
if not rows:
    print(f"{sys.argv[1]:<44} no result")
    sys.exit(0)


def med(key):
    return statistics.median(row[key] for row in rows)


failed = max(row["failed"] for row in rows)
runs = ", ".join(f"{row['msgs_per_sec']:.0f}" for row in rows)
print(
    f"{sys.argv[1]:<44} {med('msgs_per_sec'):>10.0f} msg/s {med('mb_per_sec'):>7.1f} MB/s"
    f"  p50 {med('p50_us'):>7.0f} us  p99 {med('p99_us'):>7.0f} us  p99.9 {med('p999_us'):>7.0f} us"
    f"  failed {failed}  (runs: {runs})"
)

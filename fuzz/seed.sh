#!/usr/bin/env bash
# Seeds both targets' corpora with every .nml of the UI tests and examples.
# Usage: fuzz/seed.sh   (then: RUSTC_BOOTSTRAP=1 cargo fuzz run parse ...)
set -euo pipefail
cd "$(dirname "$0")"
for target in parse frontend; do
    mkdir -p "corpus/$target"
    find ../compiler/tests/ui ../examples -name '*.nml' -print0 |
        while IFS= read -r -d '' f; do
            # Name each seed by its content so re-seeding adds no duplicates.
            cp "$f" "corpus/$target/seed-$(sha1sum "$f" | cut -c1-16)"
        done
done
ls corpus/parse | wc -l

#!/usr/bin/env bash
# Type-check only the given files (and what they import), with the project's compiler options.
# Usage: scripts/check.sh src/btf/*.ts test/btf/*.ts
exec npx tsc --noEmit --strict --target ES2022 --module NodeNext --moduleResolution NodeNext --lib ES2022 \
  --types node --skipLibCheck --noImplicitOverride --noFallthroughCasesInSwitch --resolveJsonModule "$@"

#!/usr/bin/env bash
# Rebuild bench/c/workloads.bpf.o (committed) from bench/c/workloads.c with clang for BPF.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
CLANG="${CLANG:-clang}"
"$CLANG" -target bpf -O2 -mcpu=v3 -fno-ident -c "$HERE/workloads.c" -o "$HERE/workloads.bpf.o"
"${LLVM_STRIP:-llvm-strip}" -g "$HERE/workloads.bpf.o"
echo "bench/c/workloads.bpf.o"

#!/usr/bin/env bash
# Build the structops BPF objects: bpf/obj/<name>.bpf.o against the host kernel's BTF and,
# when the structops CLI can dump the simulated kernel's BTF as C, bpf/obj/sim/<name>.bpf.o.
# The output is byte-reproducible: fixed flags, debug prefix mapped to ".", debug info
# stripped (.BTF and .BTF.ext stay). Run from anywhere: `npm run build:bpf`.
#
# OUT_DIR=<dir> writes the objects (and BUILD_INFO) to <dir> and <dir>/sim instead of bpf/obj,
# with scratch files in <dir>/.build: a rebuild to compare with the committed objects, leaving
# the tree alone. --objects-only skips the test fixtures (which always go to test/fixtures/elf).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/.." && pwd)"
OBJECTS_ONLY=0
for arg in "$@"; do
	case "$arg" in
	--objects-only) OBJECTS_ONLY=1 ;;
	*) echo "usage: [OUT_DIR=dir] build.sh [--objects-only]" >&2; exit 2 ;;
	esac
done
if [ -n "${OUT_DIR:-}" ]; then
	mkdir -p "$OUT_DIR"
	OUT="$(cd "$OUT_DIR" && pwd)"
	BUILD="${BUILD_DIR:-$OUT/.build}"
else
	OUT="$HERE/obj"
	BUILD="${BUILD_DIR:-$HERE/.build}"
fi
CLANG="${CLANG:-clang}"
STRIP="${LLVM_STRIP:-llvm-strip}"
BPFTOOL="${BPFTOOL:-bpftool}"
VMLINUX_BTF="${VMLINUX_BTF:-/sys/kernel/btf/vmlinux}"
SOURCES=(tcp_reno tcp_cubic tcp_dctcp tcp_ca_count cli_maps tcp_ca_kfunc tcp_compat tcp_cc_cubic dummy_ops features loops maps dummy_trace graph graph_bad refs percpu_ksym timer timer_bad wq_bad dynptr dynptr_bad rodata_consts graph_refcount)
# Sources only for the host kernel's types (compared with the host's verifier; the simulated
# kernel loads these same objects).
HOST_SOURCES=(global_subprog ringbuf ringbuf_bad dynptr_global map_ptr packet packet_bad packet_helpers packet_helpers_bad packet_align ld_abs cgrp_storage kfunc_hooks)
# Sources that need clang 19 (may_goto / cond_break; btf_type_tag for kptrs, which clang 14 drops), built with $CLANG19 where it is installed.
SOURCES19=(may_goto may_goto_budget safety_bad user_ringbuf user_ringbuf_bad kptr kptr_bad callback_refs percpu_obj map_kptrs map_in_map map_in_map_init cgrp_kfunc attach_targets trace_helpers)
# BPF qdiscs: only the simulated kernel has CONFIG_NET_SCH_BPF; built with $CLANG19 (their sk_buff
# kptrs need btf_type_tag).
QDISC_SOURCES=(qdisc_fifo qdisc_fq qdisc_codel qdisc_incompl qdisc_dynptr)
CLANG19="${CLANG19:-clang-19}"
VARIANTS=(tcp_reno_link:tcp_reno:SO_CC_LINK tcp_cubic_link:tcp_cubic:SO_CC_LINK tcp_dctcp_echo_state:tcp_dctcp:SO_DCTCP_ECHO_STATE)
# Sources using the bpf_testmod module's types: sim variant only, against vmlinux + the module's BTF.
SOURCES_TESTMOD=(testmod_module testmod_maybe_null testmod_autocreate testmod_multi_pages testmod_refcounted testmod_kfunc testmod_st_ops testmod_multi_st_ops testmod_callbacks testmod_kptr_return testmod_ref_global testmod_tailcall testmod_tailcall_bad testmod_priv_stack testmod_priv_stack_bad testmod_ksyms)
# sched_ext schedulers: only the simulated kernel has sched_ext (the host is built without it).
SIM_SOURCES=(scx_vtime scx_fifo scx_bad scx_minimal scx_maximal scx_select_cpu_dfl scx_enq_last scx_ddsp_bogus scx_exit scx_checks scx_null_dsp scx_null_yld scx_central scx_hotplug scx_numa scx_cgw scx_conform)

for tool in "$CLANG" "$STRIP" "$BPFTOOL"; do
	command -v "$tool" >/dev/null || { echo "build.sh: $tool not found; the committed objects in bpf/obj stay as they are" >&2; exit 1; }
done

show() { echo "${1#"$ROOT"/}"; }

# compile <vmlinux.h dir> <output dir> [extra sources]
compile() {
	local hdr="$1" out="$2" name
	shift 2
	mkdir -p "$out"
	for name in "${SOURCES[@]}" "$@"; do
		# Compile from inside bpf/ with relative paths so nothing machine-specific lands in the object.
		(cd "$HERE" && "$CLANG" -g -O2 -target bpf -mcpu=v3 -D__TARGET_ARCH_x86 \
			-fdebug-prefix-map="$HERE"=. -fdebug-prefix-map="$hdr"=. \
			-I"$hdr" -Iinclude -c "$name.bpf.c" -o "$out/$name.bpf.o")
		"$STRIP" -g "$out/$name.bpf.o"
		echo "  BPF  $(show "$out/$name.bpf.o")"
	done
	if command -v "$CLANG19" >/dev/null; then
		for name in "${SOURCES19[@]}"; do
			(cd "$HERE" && "$CLANG19" -g -O2 -target bpf -mcpu=v3 -D__TARGET_ARCH_x86 \
				-fdebug-prefix-map="$HERE"=. -fdebug-prefix-map="$hdr"=. \
				-I"$hdr" -Iinclude -c "$name.bpf.c" -o "$out/$name.bpf.o")
			"$STRIP" -g "$out/$name.bpf.o"
			echo "  BPF  $(show "$out/$name.bpf.o") ($CLANG19)"
		done
	else
		echo "build.sh: $CLANG19 not found; ${SOURCES19[*]} not rebuilt" >&2
	fi
	# Variants: <output>:<source>:<define>. The _link ones share one CA name in `.struct_ops.link`
	# maps, for live switches with BPF_LINK_UPDATE.
	local v obj src def
	for v in "${VARIANTS[@]}"; do
		IFS=: read -r obj src def <<<"$v"
		(cd "$HERE" && "$CLANG" -g -O2 -target bpf -mcpu=v3 -D__TARGET_ARCH_x86 "-D$def" \
			-fdebug-prefix-map="$HERE"=. -fdebug-prefix-map="$hdr"=. \
			-I"$hdr" -Iinclude -c "$src.bpf.c" -o "$out/$obj.bpf.o")
		"$STRIP" -g "$out/$obj.bpf.o"
		echo "  BPF  $(show "$out/$obj.bpf.o")"
	done
}

# Variant 1: the host kernel's types (vmlinux.h from /sys/kernel/btf/vmlinux, not committed).
mkdir -p "$BUILD/host"
"$BPFTOOL" btf dump file "$VMLINUX_BTF" format c >"$BUILD/host/vmlinux.h"
compile "$BUILD/host" "$OUT" "${HOST_SOURCES[@]}"

# BUILD_INFO: what the objects depend on besides their sources, so that a test can tell whether a
# rebuild here must be byte-identical to them (same compiler, same kernel BTF) or may differ.
sha() { sha256sum "$1" | cut -d' ' -f1; }
{
	echo "# Written by bpf/build.sh: the toolchain and kernel types these objects were built with."
	echo "clang: $("$CLANG" --version | head -n1)"
	echo "llvm-strip: $("$STRIP" --version | grep -m1 -i 'version')"
	echo "vmlinux_btf_sha256: $(sha "$VMLINUX_BTF")"
	echo "vmlinux_h_sha256: $(sha "$BUILD/host/vmlinux.h")"
} >"$OUT/BUILD_INFO"
echo "  GEN  $(show "$OUT/BUILD_INFO")"

if [ "$OBJECTS_ONLY" = 0 ]; then
	# A big-endian build of one object, for the byte-order tests of the ELF/BTF readers.
	mkdir -p "$ROOT/test/fixtures/elf"
	(cd "$HERE" && "$CLANG" -g -O2 -target bpfeb -mcpu=v3 -D__TARGET_ARCH_x86 \
		-fdebug-prefix-map="$HERE"=. -fdebug-prefix-map="$BUILD/host"=. \
		-I"$BUILD/host" -Iinclude -c dummy_ops.bpf.c -o "$ROOT/test/fixtures/elf/dummy_ops.bpfeb.o")
	"$STRIP" -g "$ROOT/test/fixtures/elf/dummy_ops.bpfeb.o"
	echo "  BPF  test/fixtures/elf/dummy_ops.bpfeb.o"

	# The loader's error fixtures: small objects with local types only.
	for name in bad_sec bad_st_ops_prog bad_st_ops_nonfunc st_ops_shadow st_ops_autoload st_ops_kern st_ops_two_ca extern_kcfg extern_kfunc skip_relo; do
		(cd "$ROOT/test/fixtures/elf" && "$CLANG" -g -O2 -target bpf -mcpu=v3 -D__TARGET_ARCH_x86 \
			-fdebug-prefix-map="$ROOT/test/fixtures/elf"=. -c "$name.bpf.c" -o "$name.bpf.o")
		"$STRIP" -g "$ROOT/test/fixtures/elf/$name.bpf.o"
		echo "  BPF  test/fixtures/elf/$name.bpf.o"
	done
	# CO-RE fixtures: one program against a local layout, the same types in another layout.
	for name in core_local core_target; do
		(cd "$ROOT/test/fixtures/elf" && "$CLANG" -g -O2 -target bpf -mcpu=v3 -D__TARGET_ARCH_x86 \
			-fdebug-prefix-map="$ROOT/test/fixtures/elf"=. -fdebug-prefix-map="$BUILD/host"=. \
			-I"$BUILD/host" -c "$name.bpf.c" -o "$name.bpf.o")
		"$STRIP" -g "$ROOT/test/fixtures/elf/$name.bpf.o"
		echo "  BPF  test/fixtures/elf/$name.bpf.o"
	done
fi

# Variant 2 (activates by itself): the simulated kernel's types. Its vmlinux.h comes from
# `structops btf dump id 1 format c` (the session kernel's vmlinux, src/subsys/vmlinux.ts); else from the simulated
# kernel's BTF written by sim_btf.mjs and dumped with `structops btf dump file ... format c`.
# Both need the compiled tree (npm run build); without it this variant is skipped.
CLI="$ROOT/dist/src/cli/main.js"
mkdir -p "$BUILD/sim"
sim_header() {
	[ -f "$CLI" ] || return 1
	STRUCTOPS_STATE="$BUILD/sim/.state.json" node "$CLI" btf dump id 1 format c >"$BUILD/sim/vmlinux.h" 2>/dev/null && return 0
	[ -f "$ROOT/dist/src/fidelity/sim.js" ] || return 1
	node "$HERE/sim_btf.mjs" "$BUILD/sim/vmlinux.btf" 2>/dev/null &&
		node "$CLI" btf dump file "$BUILD/sim/vmlinux.btf" format c >"$BUILD/sim/vmlinux.h" 2>/dev/null
}
# The bpf_testmod module's split BTF dumped over its vmlinux: one header with both.
testmod_header() {
	[ -f "$CLI" ] && [ -f "$ROOT/dist/src/fidelity/sim.js" ] || return 1
	mkdir -p "$BUILD/sim/testmod"
	node "$HERE/sim_btf.mjs" "$BUILD/sim/testmod/vmlinux.btf" "$BUILD/sim/testmod/bpf_testmod.btf" &&
		node "$CLI" btf dump file "$BUILD/sim/testmod/bpf_testmod.btf" base "$BUILD/sim/testmod/vmlinux.btf" \
			format c >"$BUILD/sim/testmod/vmlinux.h"
}
if sim_header && [ -s "$BUILD/sim/vmlinux.h" ]; then
	cat "$HERE/include/sim_compat.h" >>"$BUILD/sim/vmlinux.h"
	compile "$BUILD/sim" "$OUT/sim" "${SIM_SOURCES[@]}"
	for name in "${QDISC_SOURCES[@]}"; do
		command -v "$CLANG19" >/dev/null || { echo "build.sh: $CLANG19 not found; ${QDISC_SOURCES[*]} not rebuilt" >&2; break; }
		(cd "$HERE" && "$CLANG19" -g -O2 -target bpf -mcpu=v3 -D__TARGET_ARCH_x86 \
			-fdebug-prefix-map="$HERE"=. -fdebug-prefix-map="$BUILD/sim"=. \
			-I"$BUILD/sim" -Iinclude -c "$name.bpf.c" -o "$OUT/sim/$name.bpf.o")
		"$STRIP" -g "$OUT/sim/$name.bpf.o"
		echo "  BPF  $(show "$OUT/sim/$name.bpf.o")"
	done
	echo "sim_vmlinux_h_sha256: $(sha "$BUILD/sim/vmlinux.h")" >>"$OUT/BUILD_INFO"
	if testmod_header && [ -s "$BUILD/sim/testmod/vmlinux.h" ]; then
		cat "$HERE/include/sim_compat.h" >>"$BUILD/sim/testmod/vmlinux.h"
		SOURCES=("${SOURCES_TESTMOD[@]}")
		SOURCES19=()
		VARIANTS=()
		compile "$BUILD/sim/testmod" "$OUT/sim"
		echo "sim_testmod_h_sha256: $(sha "$BUILD/sim/testmod/vmlinux.h")" >>"$OUT/BUILD_INFO"
	else
		echo "build.sh: bpf_testmod objects skipped (needs the simulated kernel's module BTF)" >&2
	fi
else
	echo "build.sh: simulated-kernel variant skipped (needs \`npm run build\` and the simulated kernel's BTF dump)" >&2
fi

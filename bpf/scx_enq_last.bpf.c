// SPDX-License-Identifier: GPL-2.0
/* SCX_OPS_ENQ_LAST without ops.enqueue: validate_ops ejects it right after it attaches. */
#include "scx_common.h"

struct scx_exit_record exit_rec;

void SCX_OP_SLEEPABLE(enq_last_exit, struct scx_exit_info *ei)
{
	SCX_EXIT_RECORD(exit_rec, ei);
}

SEC(".struct_ops.link")
struct sched_ext_ops enq_last_ops = {
	.exit = (void *)enq_last_exit,
	.flags = SCX_OPS_ENQ_LAST,
	.timeout_ms = 1000,
	.name = "enq_last",
};

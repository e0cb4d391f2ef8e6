"""Scheduler: token budget, chunked prefill, max_num_seqs, preemption of the newest, FCFS without starvation.

The model is replaced by `advance`, which does what the engine does after a step: tokens become computed,
and a sequence whose tokens are all computed receives one new token.
"""

import pytest

from stellarbyte.infer.engine.block_manager import BlockManager
from stellarbyte.infer.engine.sampling_params import SamplingParams
from stellarbyte.infer.engine.scheduler import Scheduler
from stellarbyte.infer.engine.sequence import Sequence, SequenceStatus


def make(num_blocks=64, block_size=4, max_num_seqs=8, budget=32):
    bm = BlockManager(num_blocks, block_size, enable_prefix_caching=False)
    return Scheduler(bm, max_num_seqs, budget)


def seq(name, length):
    return Sequence(name, list(range(1, length + 1)), SamplingParams())


def advance(sched, batch):
    for s, n in zip(batch.seqs, batch.num_new_tokens):
        s.num_computed_tokens += n
        if s.num_computed_tokens == len(s):
            s.append_token(7)


def test_chunked_prefill_under_budget_then_decode():
    sched = make(budget=8)
    a, b = seq("a", 20), seq("b", 3)
    sched.add(a)
    sched.add(b)
    plans = []
    for _ in range(4):
        batch = sched.schedule()
        assert batch.num_tokens <= 8
        plans.append([(s.request_id, n) for s, n in zip(batch.seqs, batch.num_new_tokens)])
        advance(sched, batch)
    # a's prompt in chunks of 8, 8, 4; b is admitted as soon as the budget leaves room
    assert plans == [[("a", 8)], [("a", 8)], [("a", 4), ("b", 3)], [("a", 1), ("b", 1)]]


def test_max_num_seqs_caps_the_running_batch():
    sched = make(max_num_seqs=2)
    seqs = [seq(str(i), 2) for i in range(4)]
    for s in seqs:
        sched.add(s)
    batch = sched.schedule()
    assert [s.request_id for s in batch.seqs] == ["0", "1"] and len(sched.waiting) == 2
    sched.finish(seqs[0])
    advance(sched, batch)
    batch = sched.schedule()
    assert [s.request_id for s in batch.seqs] == ["1", "2"]


def test_preemption_takes_the_newest_and_requeues_it_first():
    sched = make(num_blocks=4, block_size=2, budget=64)
    old, new = seq("old", 4), seq("new", 4)  # 2 blocks each: the pool is full after admission
    sched.add(old)
    sched.add(new)
    advance(sched, sched.schedule())  # both prefilled; token 5 of each needs a third block
    batch = sched.schedule()  # old needs a third block -> new is preempted
    assert [s.request_id for s in batch.seqs] == ["old"] and batch.preempted == [new]
    assert new.status is SequenceStatus.WAITING and new.num_computed_tokens == 0 and new.block_table == []
    assert list(sched.waiting) == [new] and sched.num_preemptions == 1
    assert len(new) == 5  # its generated token is kept and will be recomputed


def test_a_sequence_preempts_itself_when_it_is_the_newest():
    sched = make(num_blocks=3, block_size=2, budget=64)
    a, b = seq("a", 2), seq("b", 2)
    sched.add(a)
    sched.add(b)
    advance(sched, sched.schedule())  # a: blocks [x], b: blocks [y]; 1 free
    batch = sched.schedule()  # a takes the free block; b cannot grow and is the newest: it preempts itself
    assert batch.seqs == [a] and batch.preempted == [b]


def test_fcfs_no_starvation_under_pressure():
    """A long request arriving first is admitted first and finishes although short ones keep arriving."""
    sched = make(num_blocks=10, block_size=4, max_num_seqs=4, budget=16)
    long = seq("long", 24)
    sched.add(long)
    arrivals, admitted, finished, step = ["long"], [], [], 0
    while (len(arrivals) < 41 or sched.has_unfinished()) and step < 1000:
        if step % 2 == 0 and len(arrivals) < 41:
            name = f"s{len(arrivals)}"
            sched.add(seq(name, 5))
            arrivals.append(name)
        batch = sched.schedule()
        admitted += [s.request_id for s in batch.seqs if s.request_id not in admitted]
        advance(sched, batch)
        for s in list(sched.running):
            if s.num_output_tokens >= (12 if s is long else 2):
                sched.finish(s)
                finished.append(s.request_id)
        step += 1
    assert sorted(finished) == sorted(arrivals)  # everyone finished
    assert admitted == arrivals  # strictly first come, first served
    assert finished.index("long") < 8  # the long one is not pushed back by the stream of short ones
    assert sched.num_preemptions > 0  # the pool was under pressure


def test_finish_frees_blocks_wherever_queued():
    sched = make()
    a = seq("a", 5)
    sched.add(a)
    advance(sched, sched.schedule())
    sched.finish(a)
    assert a.status is SequenceStatus.FINISHED and sched.block_manager.num_free_blocks == 64
    assert not sched.has_unfinished()


def test_bad_limits():
    with pytest.raises(ValueError, match="max_num_batched_tokens"):
        make(budget=0)

"""Device-side episode sampling from task pools."""

import numpy as np
import pytest
import torch

from sktransfer.tasks._sampling import build_pool, sample_episodes

N_CLASSES = 3

# ---------------------------------------------------------------------------
# Episode sampling
# ---------------------------------------------------------------------------

# Rows per (task, class) in the shared label space; task 2 lacks class 1 and
# (task 3, class 0) has too few rows for k_shot + n_query.
SHARED_COUNTS = np.array(
    [
        [9, 8, 10],
        [7, 12, 8],
        [9, 0, 11],
        [2, 9, 7],
    ]
)


def make_rows(counts_per_group, seed=0):
    """Rows with X = (task, class, row id, noise), shuffled."""
    rng = np.random.default_rng(seed)
    tasks, classes = [], []
    for (task, cls), count in counts_per_group.items():
        tasks += [task] * count
        classes += [cls] * count
    tasks, classes = np.array(tasks), np.array(classes)
    perm = rng.permutation(len(tasks))
    tasks, classes = tasks[perm], classes[perm]
    X = np.column_stack(
        [tasks, classes, np.arange(len(tasks)), rng.normal(size=len(tasks))]
    ).astype(np.float64)
    return X, tasks, classes


def shared_pool():
    groups = {
        (t, c): int(SHARED_COUNTS[t, c])
        for t in range(SHARED_COUNTS.shape[0])
        for c in range(SHARED_COUNTS.shape[1])
    }
    X, tasks, classes = make_rows(groups)
    pool = build_pool(
        X,
        classes,
        tasks,
        classes,
        SHARED_COUNTS.shape[0],
        SHARED_COUNTS.shape[1],
        device="cpu",
        dtype=torch.float64,
    )
    return pool


# Episodic label space: task -> its global class ids (3 or 4 classes each).
EPISODIC_CLASSES = {0: [0, 1, 2, 3], 1: [4, 5, 6], 2: [1, 7, 8, 9], 3: [2, 5, 10]}


def episodic_pool():
    groups = {(t, c): 6 + (t + c) % 3 for t, cs in EPISODIC_CLASSES.items() for c in cs}
    X, tasks, classes = make_rows(groups, seed=1)
    # The slot of a row is the rank of its class within its task.
    slots = np.array(
        [EPISODIC_CLASSES[t].index(c) for t, c in zip(tasks, classes, strict=True)]
    )
    n_slots = max(len(cs) for cs in EPISODIC_CLASSES.values())
    return build_pool(
        X,
        classes,
        tasks,
        slots,
        len(EPISODIC_CLASSES),
        n_slots,
        device="cpu",
        dtype=torch.float64,
    )


def regression_pool():
    groups = {(t, 0): n for t, n in enumerate([8, 10, 3, 12])}
    X, tasks, _ = make_rows(groups, seed=2)
    y = 0.5 * X[:, 2] + X[:, 0]
    pool = build_pool(
        X,
        y,
        tasks,
        np.zeros_like(tasks),
        4,
        1,
        device="cpu",
        dtype=torch.float64,
    )
    return pool


def draw(pool, seed, n_tasks=16, k_shot=2, n_query=3, n_way=None):
    generator = torch.Generator(device=pool.X.device).manual_seed(seed)
    return sample_episodes(
        pool, n_tasks, k_shot, n_query, n_way=n_way, generator=generator
    )


def test_sample_episodes_shapes_shared():
    pool = shared_pool()
    (Xs, ys, ws), (Xq, yq, wq) = draw(pool, 0, n_tasks=16, k_shot=2, n_query=3)
    assert Xs.shape == (16, N_CLASSES * 2, 4)
    assert ys.shape == ws.shape == (16, N_CLASSES * 2)
    assert Xq.shape == (16, N_CLASSES * 3, 4)
    assert yq.shape == wq.shape == (16, N_CLASSES * 3)
    assert ys.dtype == yq.dtype == torch.long
    assert ws.dtype == wq.dtype == torch.float64


def test_sample_episodes_shapes_regression():
    pool = regression_pool()
    assert pool.y.shape == (pool.X.shape[0], 1)
    (Xs, ys, ws), (Xq, yq, wq) = draw(pool, 0, n_tasks=5, k_shot=2, n_query=4)
    assert Xs.shape == (5, 2, 4) and Xq.shape == (5, 4, 4)
    assert ys.shape == (5, 2, 1) and yq.shape == (5, 4, 1)
    assert ws.shape == (5, 2) and wq.shape == (5, 4)
    assert bool((ws == 1).all()) and bool((wq == 1).all())
    for X, y in ((Xs, ys), (Xq, yq)):
        # Targets stay aligned with their rows; each episode is one task.
        torch.testing.assert_close(y[..., 0], 0.5 * X[..., 2] + X[..., 0])
    tasks = torch.cat([Xs[..., 0], Xq[..., 0]], 1)
    assert bool((tasks == tasks[:, :1]).all())
    # Support and query rows are disjoint where the task has enough rows.
    for b in range(5):
        if int(tasks[b, 0]) != 2:  # task 2 has 3 rows < 2 + 4
            ids = torch.cat([Xs[b, :, 2], Xq[b, :, 2]])
            assert ids.unique().numel() == ids.numel()


def test_sample_episodes_rows_come_from_task_and_class():
    pool = shared_pool()
    k_shot, n_query = 2, 3
    (Xs, ys, ws), (Xq, yq, wq) = draw(
        pool, 7, n_tasks=64, k_shot=k_shot, n_query=n_query
    )
    seen_tasks = set()
    for b in range(Xs.shape[0]):
        keep_s, keep_q = ws[b] > 0, wq[b] > 0
        rows = torch.cat([Xs[b][keep_s], Xq[b][keep_q]])
        labels = torch.cat([ys[b][keep_s], yq[b][keep_q]])
        task = int(rows[0, 0])
        seen_tasks.add(task)
        # Every row comes from the drawn task...
        assert bool((rows[:, 0] == task).all())
        # ... and, in the shared label space, its label is its class.
        assert torch.equal(rows[:, 1].long(), labels)
        # Rows come in one block per slot; the task's classes come first
        # (ascending), then the ones it lacks as weight-0 padding.
        blocks = ys[b].view(-1, k_shot)
        assert bool((blocks == blocks[:, :1]).all())
        order = blocks[:, 0].tolist()
        present = [c for c in range(N_CLASSES) if SHARED_COUNTS[task, c] > 0]
        assert order[: len(present)] == present
        assert len(set(order)) == len(order)
        assert torch.equal(yq[b], blocks[:, 0].repeat_interleave(n_query))
        # Slots the task lacks get weight 0; a short group gives what it has:
        # min(k_shot, rows - 1) support rows, then query rows up to n_query.
        for c in range(N_CLASSES):
            count = int(SHARED_COUNTS[task, c])
            n_s = min(k_shot, max(count - 1, 0))
            n_q = min(n_query, count - n_s)
            assert ws[b][ys[b] == c].tolist() == [1.0] * n_s + [0.0] * (k_shot - n_s)
            assert wq[b][yq[b] == c].tolist() == [1.0] * n_q + [0.0] * (n_query - n_q)
            # Distinct rows of the group: support and query never share one.
            ids = torch.cat(
                [Xs[b][(ys[b] == c) & keep_s][:, 2], Xq[b][(yq[b] == c) & keep_q][:, 2]]
            )
            assert ids.unique().numel() == n_s + n_q
    assert seen_tasks == set(range(SHARED_COUNTS.shape[0]))


def test_sample_episodes_missing_slot_zero_weight():
    pool = shared_pool()
    (Xs, ys, ws), (Xq, yq, wq) = draw(pool, 11, n_tasks=64)
    is_task2 = Xs[:, 0, 0] == 2  # slot 1 of task 2 is missing
    assert bool(is_task2.any())
    missing_s = (ys == 1) & is_task2.unsqueeze(1)
    missing_q = (yq == 1) & is_task2.unsqueeze(1)
    assert bool((ws[missing_s] == 0).all()) and bool((wq[missing_q] == 0).all())


def test_shared_episodes_scale_with_the_classes_of_a_task():
    # 40 classes, 2 per task: an episode holds the task's 2 slots, not 40, and
    # its labels are the global class codes.
    groups = {(t, c): 5 for t in range(20) for c in (2 * t, 2 * t + 1)}
    X, tasks, classes = make_rows(groups, seed=3)
    pool = build_pool(
        X, classes, tasks, classes, 20, 40, device="cpu", dtype=torch.float64
    )
    (Xs, ys, ws), (Xq, yq, wq) = draw(pool, 0, n_tasks=8, k_shot=2, n_query=3)
    assert Xs.shape == (8, 2 * 2, 4) and Xq.shape == (8, 2 * 3, 4)
    assert bool((ws == 1).all()) and bool((wq == 1).all())
    task = Xs[:, 0, 0].long()
    expected = torch.stack([2 * task, 2 * task + 1], 1).repeat_interleave(2, 1)
    assert torch.equal(ys, expected)
    assert torch.equal(Xs[..., 1].long(), ys) and torch.equal(Xq[..., 1].long(), yq)


def test_short_groups_pad_instead_of_repeating_rows():
    # Regression task 2 has 3 rows for k_shot=2 + n_query=4: 2 support rows,
    # the last row as the only query row, weight 0 for the padding.
    pool = regression_pool()
    tasks = torch.full((6,), 2)
    generator = torch.Generator().manual_seed(0)
    (Xs, _, ws), (Xq, _, wq) = sample_episodes(
        pool, 6, 2, 4, generator=generator, tasks=tasks
    )
    assert bool((ws == 1).all())
    assert wq.tolist() == [[1.0, 0.0, 0.0, 0.0]] * 6
    for b in range(6):
        ids = torch.cat([Xs[b, :, 2], Xq[b, :1, 2]])
        assert ids.unique().numel() == 3


def test_support_size_per_episode():
    # Episodes with 1, 2 or 3 support rows per class out of k_shot=3: the
    # support columns beyond get weight 0 and the query rows are fresh rows.
    pool = shared_pool()
    tasks = torch.tensor([0, 1, 0, 1])
    support_size = torch.tensor([1, 2, 3, 3])
    generator = torch.Generator().manual_seed(5)
    (Xs, ys, ws), (Xq, yq, wq) = sample_episodes(
        pool, 4, 3, 4, generator=generator, tasks=tasks, support_size=support_size
    )
    assert torch.equal(Xs[:, 0, 0].long(), tasks)  # the tasks asked for
    for b, size in enumerate(support_size.tolist()):
        for c in range(N_CLASSES):
            assert ws[b][ys[b] == c].tolist() == [1.0] * size + [0.0] * (3 - size)
            assert bool((wq[b][yq[b] == c] == 1).all())
            ids = torch.cat(
                [Xs[b][(ys[b] == c) & (ws[b] > 0)][:, 2], Xq[b][yq[b] == c][:, 2]]
            )
            assert ids.unique().numel() == size + 4


def test_sample_episodes_seeded():
    for pool, n_way in (
        (shared_pool(), None),
        (episodic_pool(), 2),
        (regression_pool(), None),
    ):
        first = draw(pool, 3, n_way=n_way)
        again = draw(pool, 3, n_way=n_way)
        other = draw(pool, 4, n_way=n_way)
        for part_a, part_b in zip(first, again, strict=True):
            for a, b in zip(part_a, part_b, strict=True):
                assert torch.equal(a, b)
        assert not torch.equal(first[0][0], other[0][0])


def test_sample_episodes_episodic():
    pool = episodic_pool()
    n_way, k_shot, n_query = 2, 2, 3
    (Xs, ys, ws), (Xq, yq, wq) = draw(
        pool, 5, n_tasks=200, k_shot=k_shot, n_query=n_query, n_way=n_way
    )
    assert Xs.shape == (200, n_way * k_shot, 4)
    assert Xq.shape == (200, n_way * n_query, 4)
    assert ys.shape == ws.shape == (200, n_way * k_shot)
    assert yq.shape == wq.shape == (200, n_way * n_query)
    # Every task has at least n_way classes: no empty slot is ever drawn.
    assert bool((ws == 1).all()) and bool((wq == 1).all())
    assert bool(((ys >= 0) & (ys < n_way)).all())
    assert bool(((yq >= 0) & (yq < n_way)).all())
    drawn = {t: set() for t in EPISODIC_CLASSES}
    for b in range(Xs.shape[0]):
        rows = torch.cat([Xs[b], Xq[b]])
        labels = torch.cat([ys[b], yq[b]])
        task = int(rows[0, 0])
        assert bool((rows[:, 0] == task).all())
        classes = [int(c) for c in rows[:, 1]]
        assert set(classes) <= set(EPISODIC_CLASSES[task])
        # Each label is one class of the task, and distinct labels distinct classes.
        mapping = {}
        for label, cls in zip(labels.tolist(), classes, strict=True):
            assert mapping.setdefault(label, cls) == cls
        assert sorted(mapping) == list(range(n_way))
        assert len(set(mapping.values())) == n_way
        drawn[task].update(mapping.values())
        # Support and query rows are disjoint (every group has >= 6 rows).
        ids = rows[:, 2]
        assert ids.unique().numel() == ids.numel()
    # Over many episodes every class of every task is drawn.
    assert drawn == {t: set(cs) for t, cs in EPISODIC_CLASSES.items()}


def test_sample_episodes_episodic_fewer_classes_than_ways():
    # A task with fewer classes than n_way gets weight 0 for the missing ways.
    pool = episodic_pool()
    (Xs, ys, ws), _ = draw(pool, 2, n_tasks=100, k_shot=1, n_query=1, n_way=4)
    for b in range(Xs.shape[0]):
        task = int(Xs[b][ws[b] > 0][0, 0])
        assert int(ws[b].sum()) == len(EPISODIC_CLASSES[task])
        kept = Xs[b][ws[b] > 0]
        assert bool((kept[:, 0] == task).all())
        assert kept[:, 1].unique().numel() == len(EPISODIC_CLASSES[task])


DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


@pytest.mark.parametrize("device", DEVICES)
def test_sample_episodes_stays_on_device(device):
    X, tasks, classes = make_rows({(0, 0): 5, (0, 1): 6, (1, 0): 7, (1, 1): 4})
    pool = build_pool(
        X, classes, tasks, classes, 2, 2, device=device, dtype=torch.float32
    )
    assert pool.X.device.type == device
    generator = torch.Generator(device=pool.X.device).manual_seed(0)
    for n_way in (None, 2):
        support, query = sample_episodes(
            pool, 3, 2, 2, n_way=n_way, generator=generator
        )
        for part in (*support, *query):
            assert isinstance(part, torch.Tensor)
            assert part.device == pool.X.device
        assert support[2].dtype == torch.float32


def test_large_groups_are_sampled_by_a_window_of_distinct_rows():
    # One regression task of 50 rows, sampled as a "large" group (exact_size=8):
    # consecutive rows from a random start, wrapping around.
    n = 50
    X = np.arange(n, dtype=float)[:, None]
    pool = build_pool(
        X,
        np.arange(n, dtype=float),
        np.zeros(n, dtype=int),
        np.zeros(n, dtype=int),
        1,
        1,
        device="cpu",
        dtype=torch.float64,
        shuffle=np.random.RandomState(0),
    )
    generator = torch.Generator().manual_seed(0)
    seen = set()
    for _ in range(20):
        (Xs, ys, _), (Xq, yq, _) = sample_episodes(
            pool, 8, 3, 4, generator=generator, exact_size=8
        )
        ids = torch.cat([Xs[..., 0], Xq[..., 0]], dim=1)
        for row in ids:
            assert len(set(row.tolist())) == 7  # distinct: support and query apart
        assert torch.equal(ys[..., 0], Xs[..., 0])  # targets stay with their rows
        seen.update(ids.flatten().tolist())
    assert seen == set(range(n))  # every row is reached


def test_shuffle_applies_only_when_a_group_is_large():
    X = np.arange(10, dtype=float)[:, None]
    args = (X, np.zeros(10), np.zeros(10, dtype=int), np.zeros(10, dtype=int), 1, 1)
    pool = build_pool(
        *args, device="cpu", dtype=torch.float64, shuffle=np.random.RandomState(0)
    )
    assert torch.equal(pool.X[:, 0], torch.arange(10, dtype=torch.float64))


def test_build_pool_keeps_data_order_within_groups_without_shuffle():
    # Rows of two tasks interleaved, 40 each: each group keeps its data order
    # (a stable sort; numpy's default sort reorders ties beyond 16 rows).
    tasks = np.tile([0, 1], 40)
    X = np.arange(80, dtype=float)[:, None]
    pool = build_pool(
        X, np.zeros(80), tasks, np.zeros(80, dtype=int), 2, 1,
        device="cpu", dtype=torch.float64,
    )  # fmt: skip
    assert pool.X[:40, 0].tolist() == X[tasks == 0, 0].tolist()
    assert pool.X[40:, 0].tolist() == X[tasks == 1, 0].tolist()


@pytest.mark.parametrize("extra", [0, 1])
def test_shuffle_starts_beyond_the_exact_group_size(extra):
    from sktransfer.tasks._sampling import EXACT_GROUP_SIZE

    n = EXACT_GROUP_SIZE + extra
    X = np.arange(n + 3, dtype=float)[:, None]
    tasks = np.r_[np.zeros(n, dtype=int), np.ones(3, dtype=int)]
    pool = build_pool(
        X, np.zeros(n + 3), tasks, np.zeros(n + 3, dtype=int), 2, 1,
        device="cpu", dtype=torch.float64, shuffle=np.random.RandomState(0),
    )  # fmt: skip
    big = pool.X[:n, 0]
    assert sorted(big.tolist()) == list(range(n))  # the group's own rows
    assert sorted(pool.X[n:, 0].tolist()) == [n, n + 1, n + 2]
    in_order = torch.equal(big, torch.arange(n, dtype=torch.float64))
    assert in_order == (extra == 0)  # shuffled only beyond EXACT_GROUP_SIZE


def test_a_class_of_one_row_is_a_query_row_only():
    # Class 0 of the task has one row: it is used (a slot of the task), gives
    # no support row, and is the only query row of its class, with weight 1.
    X, tasks, classes = make_rows({(0, 0): 1, (0, 1): 6}, seed=4)
    pool = build_pool(
        X, classes, tasks, classes, 1, 2, device="cpu", dtype=torch.float64
    )
    assert pool.n_slots_per_task.tolist() == [2]
    (Xs, ys, ws), (Xq, yq, wq) = draw(pool, 0, n_tasks=5, k_shot=2, n_query=3)
    assert ws[ys == 0].sum() == 0 and bool((ws[ys == 1] == 1).all())
    assert wq[yq == 0].view(5, 3).tolist() == [[1.0, 0.0, 0.0]] * 5
    assert bool((Xq[yq == 0].view(5, 3, 4)[:, 0, 1] == 0).all())  # class 0's row


def test_tasks_of_one_class_give_episodes_of_one_slot():
    # Shared label space, three classes, every task has one of them: an
    # episode holds k_shot + n_query rows of that class, no padding slot.
    X, tasks, classes = make_rows({(0, 0): 6, (1, 2): 6}, seed=5)
    pool = build_pool(
        X, classes, tasks, classes, 2, 3, device="cpu", dtype=torch.float64
    )
    (Xs, ys, ws), (Xq, yq, wq) = draw(pool, 0, n_tasks=4, k_shot=2, n_query=3)
    assert Xs.shape == (4, 2, 4) and Xq.shape == (4, 3, 4)
    assert bool((ws == 1).all()) and bool((wq == 1).all())


def test_multi_output_targets_stay_with_their_rows_in_the_pool_dtype():
    groups = {(t, 0): 8 for t in range(3)}
    X, tasks, _ = make_rows(groups, seed=6)
    y = np.column_stack([X[:, 2], -2.0 * X[:, 2]])
    pool = build_pool(
        X, y, tasks, np.zeros_like(tasks), 3, 1, device="cpu", dtype=torch.float32
    )
    assert pool.y.dtype == torch.float32 and pool.y.shape == (24, 2)
    (Xs, ys, _), (Xq, yq, _) = draw(pool, 0, n_tasks=5, k_shot=2, n_query=3)
    assert ys.shape == (5, 2, 2) and yq.shape == (5, 3, 2)
    assert ys.dtype == torch.float32
    torch.testing.assert_close(ys, torch.stack([Xs[..., 2], -2 * Xs[..., 2]], -1))
    torch.testing.assert_close(yq, torch.stack([Xq[..., 2], -2 * Xq[..., 2]], -1))


def test_groups_of_one_episode_are_drawn_independently():
    # Two classes of 10 rows: the rows drawn from one class say nothing about
    # the positions drawn from the other.
    X, tasks, classes = make_rows({(0, 0): 10, (0, 1): 10}, seed=7)
    pool = build_pool(
        X, classes, tasks, classes, 1, 2, device="cpu", dtype=torch.float64
    )
    position = {int(row): i for i, row in enumerate(pool.X[:, 2].tolist())}
    (Xs, ys, _), _ = draw(pool, 0, n_tasks=20, k_shot=3, n_query=2)
    same = 0
    for b in range(20):
        by_class = [
            [position[int(r)] - int(pool.offsets[0, c]) for r in Xs[b][ys[b] == c, 2]]
            for c in (0, 1)
        ]
        same += by_class[0] == by_class[1]
    assert same < 20


def test_large_groups_of_several_classes_are_windows_of_their_own_rows():
    # Two classes of 30 rows sampled as large groups (exact_size=8): every slot
    # gets distinct rows of its own class, and the draw is seeded by the
    # generator alone, whatever torch's global seed.
    X, tasks, classes = make_rows({(0, 0): 30, (0, 1): 30}, seed=8)
    pool = build_pool(
        X, classes, tasks, classes, 1, 2, device="cpu", dtype=torch.float64,
        shuffle=np.random.RandomState(0),
    )  # fmt: skip
    draws = []
    for global_seed in (1, 2):
        torch.manual_seed(global_seed)
        generator = torch.Generator().manual_seed(0)
        draws.append(sample_episodes(pool, 6, 2, 3, generator=generator, exact_size=8))
    (Xs, ys, ws), (Xq, yq, wq) = draws[0]
    assert Xs.shape == (6, 4, 4) and Xq.shape == (6, 6, 4)
    assert bool((ws == 1).all()) and bool((wq == 1).all())
    assert torch.equal(Xs[..., 1].long(), ys) and torch.equal(Xq[..., 1].long(), yq)
    for b in range(6):
        for c in (0, 1):
            ids = torch.cat([Xs[b][ys[b] == c, 2], Xq[b][yq[b] == c, 2]])
            assert ids.unique().numel() == 5
    for part_a, part_b in zip(draws[0], draws[1], strict=True):
        for a, b in zip(part_a, part_b, strict=True):
            assert torch.equal(a, b)

"""FlatAdam: torch's fused Adam on one padded buffer per group, exact wherever a model sits."""
import torch

from mlr_mlflow.evaluate.training.optim import ALIGN, FlatAdam


def _loss(params, x, with_second=True):
    loss = (params[0] @ x).sin().sum() + (params[1] ** 2).sum()
    if with_second:  # the second group gets a gradient only in some steps
        loss = loss + params[2].tanh().sum()
    return loss


def test_flat_adam_takes_torch_fused_adam_steps_and_skips_groups_without_gradient():
    """Sizes that fill whole vector lanes (no scalar tail in torch's own per-tensor kernel): every
    value, moment and step count equals torch.optim.Adam(fused=True), also for a group that gets no
    gradient in a third of the steps (it takes no step then, as torch's Adam skips it)."""
    gen = torch.Generator().manual_seed(0)
    start = [torch.randn(4, ALIGN, generator=gen), torch.randn(ALIGN, generator=gen),
             torch.randn(2, ALIGN, generator=gen)]
    ours = [torch.nn.Parameter(t.clone()) for t in start]
    theirs = [torch.nn.Parameter(t.clone()) for t in start]
    opt = FlatAdam([ours[:2], ours[2:]], lr=1e-2)
    ref = torch.optim.Adam(theirs, lr=1e-2, fused=True)
    for step in range(40):
        x = torch.randn(ALIGN, generator=gen)
        for params, optimizer in ((ours, opt), (theirs, ref)):
            optimizer.zero_grad()
            _loss(params, x, with_second=step % 3 != 0).backward()
            optimizer.step()
    for a, b in zip(ours, theirs):
        assert torch.equal(a, b)
    second = opt.state[opt.flats[1].param]
    assert int(second["step"]) == int(ref.state[theirs[2]]["step"]) == 26
    assert torch.equal(second["exp_avg"][: theirs[2].numel()], ref.state[theirs[2]]["exp_avg"].reshape(-1))
    assert int(opt.state[opt.flats[0].param]["step"]) == 40


def test_parameters_become_views_of_their_group_buffer_with_their_values():
    gen = torch.Generator().manual_seed(1)
    params = [torch.nn.Parameter(torch.randn(3, 5, generator=gen)), torch.nn.Parameter(torch.randn(7, generator=gen))]
    before = [p.detach().clone() for p in params]
    opt = FlatAdam([params], lr=1e-3)
    flat = opt.flats[0].param
    assert flat.numel() % ALIGN == 0 and flat.numel() >= 22
    for p, b in zip(params, before):
        assert torch.equal(p.detach(), b)
        assert flat.data_ptr() <= p.data_ptr() < flat.data_ptr() + flat.numel() * 4
    with torch.no_grad():
        params[1].add_(1.0)  # writes through to the buffer
    assert torch.equal(flat.detach()[15:22], before[1] + 1.0)


def test_a_model_s_updates_do_not_depend_on_its_position_or_batch():
    """Stacked models ([M, 10], as a last layer's biases): model m's rows trained in a stack of 12
    equal the same model trained in a stack of 3 or alone, bit for bit. (torch's fused Adam on the
    separate tensors computes a tensor's last elements in a scalar tail whose rounding can differ.)"""
    gen = torch.Generator().manual_seed(2)
    init = torch.randn(12, 10, generator=gen)
    targets = torch.randn(60, 12, 10, generator=gen)

    def train(rows: list[int]) -> torch.Tensor:
        w = torch.nn.Parameter(init[rows].clone())
        extra = torch.nn.Parameter(torch.zeros(len(rows), 3))  # shifts w's place in the buffer
        opt = FlatAdam([[extra, w]], lr=0.05)
        for t in targets:
            opt.zero_grad()
            (((w - t[rows]) ** 3).abs().sum() + (extra ** 2).sum()).backward()
            opt.step()
        return w.detach()

    together = train(list(range(12)))
    for rows in ([9, 10, 11], [1, 4, 7], [5]):
        assert torch.equal(train(rows), together[rows])

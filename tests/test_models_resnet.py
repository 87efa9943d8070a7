"""ResNet against Hugging Face ``ResNetForImageClassification`` on tiny random models with
every weight and running statistic jittered (basic and bottleneck blocks, both downsampling
options): eval logits, train-mode logits and running means, saving back to
``transformers``, half-precision weights, loading errors, preset sizes, and ResNet-20
training a few steps on random CIFAR-shaped data with its batch-norm state updated."""
import ml_dtypes
import numpy as np
import pytest
import torch
import transformers

import fungrad
import fungrad.numpy as jnp
from fungrad import optim, random, tree
from fungrad.models import hf, resnet

TOL = dict(rtol=1e-4, atol=1e-4)

VARIANTS = {
    "basic": dict(layer_type="basic", hidden_sizes=[8, 16], depths=[1, 2]),
    "bottleneck": dict(layer_type="bottleneck", hidden_sizes=[16, 32], depths=[2, 1]),
    "bottleneck-downsample-first": dict(layer_type="bottleneck", hidden_sizes=[16, 32],
                                        depths=[1, 1], downsample_in_bottleneck=True,
                                        downsample_in_first_stage=True),
}


def hf_model(**overrides):
    """A tiny random HF ResNet; weights, biases and running statistics all jittered."""
    kwargs = dict(num_channels=3, embedding_size=8, num_labels=5)
    kwargs.update(overrides)
    torch.manual_seed(0)
    model = transformers.ResNetForImageClassification(transformers.ResNetConfig(**kwargs)).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.1 * torch.randn_like(p))
        for name, b in model.named_buffers():
            if name.endswith("running_mean"):
                b.add_(0.1 * torch.randn_like(b))
            elif name.endswith("running_var"):
                b.mul_(1 + 0.5 * torch.rand_like(b))
    return model


def images(batch=2, size=20, channels=3, seed=0):
    """NCHW for torch; ``.transpose(0, 2, 3, 1)`` gives fungrad's NHWC."""
    return np.random.default_rng(seed).normal(size=(batch, channels, size, size)).astype(np.float32)


def nhwc(x):
    return jnp.asarray(x.transpose(0, 2, 3, 1))


@pytest.fixture(scope="module")
def basic(tmp_path_factory):
    model = hf_model(**VARIANTS["basic"])
    folder = tmp_path_factory.mktemp("resnet")
    model.save_pretrained(folder)
    return (model, folder, *resnet.from_pretrained(folder))


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_eval_logits_match_transformers(tmp_path, variant):
    model = hf_model(**VARIANTS[variant])
    model.save_pretrained(tmp_path)
    cfg, params, state = resnet.from_pretrained(tmp_path)
    assert cfg.layer_type == VARIANTS[variant]["layer_type"] and cfg.num_labels == 5
    x = images()
    with torch.no_grad():
        expected = model(torch.tensor(x)).logits.numpy()
    logits, new_state = fungrad.jit(resnet.apply, static_argnums=2, static_argnames="train")(
        params, state, cfg, nhwc(x), train=False)
    np.testing.assert_allclose(np.asarray(logits), expected, **TOL)
    for a, b in zip(tree.leaves(new_state), tree.leaves(state)):   # evaluation keeps the state
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_train_mode_uses_batch_statistics_like_transformers(basic):
    """In training, logits come from the batch's statistics and the running means move
    by ``1 - bn_momentum`` towards them, as PyTorch's ``momentum=0.1``."""
    model, _, cfg, params, state = basic
    x = images(batch=4, seed=1)
    model.train()
    try:
        with torch.no_grad():
            expected = model(torch.tensor(x)).logits.numpy()
    finally:
        model.eval()
    logits, new_state = resnet.apply(params, state, cfg, nhwc(x), train=True)
    np.testing.assert_allclose(np.asarray(logits), expected, **TOL)
    bn = model.resnet.encoder.stages[1].layers[0].layer[1].normalization
    new_mean = np.asarray(new_state["stages"][1][0]["layers"][1].mean)
    np.testing.assert_allclose(new_mean, bn.running_mean.numpy(), **TOL)
    assert not np.allclose(new_mean, np.asarray(state["stages"][1][0]["layers"][1].mean))


def test_save_pretrained_loads_in_transformers(tmp_path):
    cfg = resnet.Config(embedding_size=8, hidden_sizes=(16, 32), depths=(1, 1),
                        layer_type="bottleneck", num_labels=4)
    params, state = resnet.init(random.PRNGKey(0), cfg)
    rng = np.random.default_rng(2)
    state = tree.map(lambda s: s + jnp.asarray(rng.uniform(0.1, 0.5, s.shape), jnp.float32), state)
    resnet.save_pretrained(tmp_path, cfg, params, state)
    model = transformers.ResNetForImageClassification.from_pretrained(tmp_path).eval()
    x = images(seed=3)
    with torch.no_grad():
        expected = model(torch.tensor(x)).logits.numpy()
    logits, _ = resnet.apply(params, state, cfg, nhwc(x), train=False)
    np.testing.assert_allclose(np.asarray(logits), expected, **TOL)
    assert resnet.from_pretrained(tmp_path)[0] == cfg


def test_bfloat16_weights_load(basic, tmp_path):
    _, folder, cfg, params, state = basic
    config, tensors = hf.load_folder(folder)
    hf.save_folder(tmp_path, config, {k: v if v.dtype == np.int64 else v.astype(ml_dtypes.bfloat16)
                                      for k, v in tensors.items()})
    _, params16, state16 = resnet.from_pretrained(tmp_path)
    for a, b in zip(tree.leaves((params16, state16)), tree.leaves((params, state))):
        rounded = np.asarray(b).astype(ml_dtypes.bfloat16).astype(np.float32)
        np.testing.assert_array_equal(np.asarray(a), rounded)


@pytest.mark.parametrize("damage, message", [
    (lambda c, t: t.pop("classifier.1.bias"), r"missing tensors \['classifier.1.bias'\]"),
    (lambda c, t: t.update({"resnet.extra.weight": np.zeros(2, np.float32)}),
     r"unexpected tensors \['resnet.extra.weight'\]"),
    (lambda c, t: c.update(num_channels=1), r"'resnet.embedder.embedder.convolution.weight' "
                                            r"has shape \(8, 3, 7, 7\); the config implies "
                                            r"\(8, 1, 7, 7\)"),
    (lambda c, t: c.update(id2label={"0": "a", "1": "b"}),
     r"'classifier.1.weight' has shape \(5, 16\); the config implies \(2, 16\)"),
    (lambda c, t: c.update(hidden_act="gelu"), "hidden_act='gelu' is not supported"),
    (lambda c, t: c.update(layer_type="preactivation"),
     "layer_type='preactivation' is not supported"),
])
def test_loading_errors_name_the_problem(basic, tmp_path, damage, message):
    _, folder, *_ = basic
    config, tensors = hf.load_folder(folder)
    damage(config, tensors)
    hf.save_folder(tmp_path, config, tensors)
    with pytest.raises(hf.PretrainedError, match=message):
        resnet.from_pretrained(tmp_path)


def test_truncated_weights_are_rejected(basic, tmp_path):
    _, folder, *_ = basic
    hf.save_folder(tmp_path, *hf.load_folder(folder))
    weights = tmp_path / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-64])
    with pytest.raises(hf.PretrainedError, match="model.safetensors"):
        resnet.from_pretrained(tmp_path)


def test_cifar_resnet_has_no_hugging_face_format(tmp_path):
    cfg = resnet.PRESETS["resnet20-cifar"]
    with pytest.raises(hf.PretrainedError, match="CIFAR stem has no Hugging Face equivalent"):
        cfg.to_hf()


def test_presets_have_the_published_sizes():
    """Parameter counts of torchvision's ResNet-18/50 (the same networks as
    ``microsoft/resnet-18``/``-50``) and of ResNet-20 with projection shortcuts."""
    def count(name):
        params, _ = fungrad.eval_shape(lambda: resnet.init(random.PRNGKey(0), resnet.PRESETS[name]))
        return sum(int(np.prod(x.shape)) for x in tree.leaves(params))
    assert count("resnet18") == 11_689_512
    assert count("resnet50") == 25_557_032
    assert count("resnet20-cifar") == 272_474     # 0.27M, as the paper's table


def test_resnet20_trains_on_cifar_shaped_data():
    cfg = resnet.PRESETS["resnet20-cifar"]
    params, state = resnet.init(random.PRNGKey(0), cfg)
    opt = optim.adamw(1e-2)
    opt_state = opt.init(params)
    rng = np.random.default_rng(4)
    x = jnp.asarray(rng.normal(size=(8, 32, 32, 3)).astype(np.float32))
    y = jnp.asarray(rng.integers(0, 10, 8).astype(np.int32))

    @fungrad.jit
    def step(params, state, opt_state):
        loss_and_grads = fungrad.value_and_grad(resnet.loss, has_aux=True)
        (value, state), grads = loss_and_grads(params, state, cfg, x, y)
        updates, opt_state = opt.update(grads, opt_state, params)
        return optim.apply_updates(params, updates), state, opt_state, value

    first_state, losses = state, []
    for _ in range(5):
        params, state, opt_state, value = step(params, state, opt_state)
        losses.append(float(value))
    assert losses[-1] < 0.5 * losses[0], losses
    pairs = zip(tree.leaves(state), tree.leaves(first_state))
    assert all(not np.allclose(np.asarray(a), np.asarray(b)) for a, b in pairs)  # all updated
    logits, same = resnet.apply(params, state, cfg, x, train=False)
    assert logits.shape == (8, 10) and all(np.array_equal(np.asarray(a), np.asarray(b))
                                           for a, b in zip(tree.leaves(same), tree.leaves(state)))

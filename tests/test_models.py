"""Networks (paper CNN, pdfsg-net) and the elastic-net logistic regression."""

from __future__ import annotations

import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")
torch.set_num_threads(1)

from pdfsg.models.cnn import (  # noqa: E402
    PaperCNN,
    PaperCNNConfig,
    PdfsgNet,
    PdfsgNetConfig,
    build_network,
    config_from_dict,
)
from pdfsg.models.logreg import (  # noqa: E402
    LogRegConfig,
    feature_dim,
    fit_logreg,
    logreg_predict_proba,
    quadratic_features,
)
from pdfsg.params import PdfParams  # noqa: E402


def test_paper_cnn_is_the_paper_architecture():
    cfg = PaperCNNConfig()  # defaults = the paper's final model
    assert (cfg.filters, cfg.kernel_size, cfg.hidden, cfg.pool) == ((256, 64), 32, 128, 2)
    assert cfg.npoints == PdfParams().npoints == 209
    assert cfg.flat_features == 104 * 64 == 6656
    net = PaperCNN(cfg).eval()
    convs = [m for m in net.modules() if isinstance(m, torch.nn.Conv1d)]
    assert [(c.in_channels, c.out_channels, c.kernel_size[0]) for c in convs] == [
        (1, 256, 32),
        (256, 64, 32),
    ]
    assert sum(isinstance(m, torch.nn.BatchNorm1d) for m in net.modules()) == 2
    x = torch.rand(3, 209)
    # 'same' padding keeps the length through both convolutions, pooling halves it
    h = net.features[:7](x[:, None])
    assert h.shape == (3, 64, 209)
    assert net.features(x[:, None]).shape == (3, 64, 104)
    assert net(x).shape == (3, 45)
    # He-normal initialisation: std ~ sqrt(2 / fan_in)
    w = convs[1].weight.detach()
    assert abs(float(w.std()) / math.sqrt(2 / (256 * 32)) - 1) < 0.05
    with pytest.raises(ValueError, match="209 input points"):
        net(torch.rand(2, 150))


def test_pdfsg_net_takes_any_length_and_knows_its_grid():
    short = PdfParams(rmax=20.0)
    cfg = PdfsgNetConfig(n_classes=7, npoints=short.npoints, rmin=short.rmin, rstep=short.rstep)
    net = PdfsgNet(cfg).eval()
    with torch.no_grad():
        for n in (short.npoints, 209, 40):
            assert net(torch.rand(2, n)).shape == (2, 7)
        x = torch.rand(2, 60)
        # the coordinate channel makes the answer depend on where the points sit in r
        assert not torch.allclose(net(x, start=0), net(x, start=30))
    n_params = sum(p.numel() for p in net.parameters())
    n_paper = sum(p.numel() for p in PaperCNN(PaperCNNConfig(n_classes=7)).parameters())
    assert n_params < n_paper / 3


def test_config_round_trip():
    for kind, cfg in (
        ("cnn-paper", PaperCNNConfig(filters=(128, 32), kernel_size=24, n_classes=5)),
        ("pdfsg-net", PdfsgNetConfig(stages=((16, 2, 1), (32, 1, 2)), n_classes=5)),
    ):
        d = cfg.to_dict()
        assert config_from_dict(kind, d) == cfg
        net = build_network(kind, cfg)
        assert isinstance(net, torch.nn.Module)
    with pytest.raises(ValueError, match="unknown cnn-paper config field"):
        config_from_dict("cnn-paper", {"filterz": [1, 2]})


def test_quadratic_features_match_eq5():
    assert feature_dim(209, "x2") == 21736 and feature_dim(209, "x") == 209
    rng = np.random.default_rng(0)
    X = rng.random((5, 6)).astype(np.float32)
    F = quadratic_features(X, batch_size=2)
    expect = [[x[i] * x[j] for i in range(6) for j in range(i + 1, 6)] for x in X]
    assert F.dtype == np.float32 and F.shape == (5, 15)
    assert np.allclose(F, expect)


def _bumps(n_per_class: int, n_classes: int, d: int, seed: int):
    rng = np.random.default_rng(seed)
    grid = np.arange(d)
    centers = np.random.default_rng(99).uniform(5, d - 5, size=(n_classes, 3))
    X, y = [], []
    for c in range(n_classes):
        for _ in range(n_per_class):
            g = sum(
                np.exp(-0.5 * ((grid - m) / 2.0) ** 2) for m in centers[c] + rng.normal(0, 1, 3)
            )
            g = g + 0.1 * rng.normal(size=d)
            X.append((g - g.min()) / (g.max() - g.min()))
            y.append(c)
    return np.asarray(X, dtype=np.float32), np.asarray(y)


def test_logreg_on_x_beats_chance_and_records_cv():
    X, y = _bumps(30, 8, 60, seed=1)
    Xt, yt = _bumps(10, 8, 60, seed=2)
    cfg = LogRegConfig(feature="x", alphas=(1e-4, 1e-2), l1_ratios=(0.5, 1.0), max_iter=200)
    fit = fit_logreg(X, y, 8, cfg)
    proba = logreg_predict_proba(Xt, fit.coef, fit.intercept, "x")
    assert np.allclose(proba.sum(1), 1)
    acc = float((proba.argmax(1) == yt).mean())
    assert acc > 3 / 8  # chance is 1/8
    assert len(fit.cv["points"]) == 4 and fit.cv["chosen"]["alpha"] in (1e-4, 1e-2)
    assert fit.cv["folds"] == 3
    best = max(p["mean_accuracy"] for p in fit.cv["points"])
    chosen = [
        p for p in fit.cv["points"] if p["alpha"] == fit.alpha and p["l1_ratio"] == fit.l1_ratio
    ]
    assert chosen[0]["mean_accuracy"] == best


def test_logreg_x2_probabilities_are_sklearns():
    from sklearn.linear_model import LogisticRegression

    X, y = _bumps(15, 4, 20, seed=3)
    cfg = LogRegConfig(feature="x2", alphas=(1e-3,), l1_ratios=(1.0,), cv_folds=0, max_iter=50)
    fit = fit_logreg(X, y, 5, cfg)  # class 4 has no rows
    assert fit.coef.shape == (5, 190) and fit.cv["folds"] == 0
    proba = logreg_predict_proba(X, fit.coef, fit.intercept, "x2", batch_size=7)
    assert proba[:, 4].max() < 1e-10
    assert float((proba.argmax(1) == y).mean()) > 0.5
    # the multinomial softmax is sklearn's predict_proba
    F = quadratic_features(X)
    sk = LogisticRegression(C=1.0, solver="lbfgs", max_iter=300).fit(F, y)
    mine = logreg_predict_proba(X, sk.coef_, sk.intercept_, "x2")
    assert np.allclose(mine, sk.predict_proba(F), atol=1e-5)


def test_logreg_sgd_is_sklearns_one_vs_rest():
    from sklearn.linear_model import SGDClassifier

    X, y = _bumps(30, 6, 40, seed=4)
    Xt, yt = _bumps(10, 6, 40, seed=5)
    cfg = LogRegConfig(
        feature="x", solver="sgd", alphas=(1e-4, 1e-3), l1_ratios=(0.75,), max_iter=200
    )
    fit = fit_logreg(X, y, 7, cfg)  # class 6 has no rows
    assert fit.multiclass == "ovr" and len(fit.cv["points"]) == 2
    proba = logreg_predict_proba(Xt, fit.coef, fit.intercept, "x", multiclass="ovr")
    assert np.allclose(proba.sum(1), 1) and proba[:, 6].max() < 1e-10
    assert float((proba.argmax(1) == yt).mean()) > 3 / 6  # chance is 1/6
    # probabilities are SGDClassifier's predict_proba (normalised one-vs-rest sigmoids)
    sk = SGDClassifier(
        loss="log_loss",
        penalty="elasticnet",
        alpha=1e-3,
        l1_ratio=0.75,
        max_iter=200,
        random_state=0,
    ).fit(X, y)
    mine = logreg_predict_proba(Xt, sk.coef_, sk.intercept_, "x", multiclass="ovr")
    assert np.allclose(mine, sk.predict_proba(Xt), atol=1e-6)
    # the two links differ: softmax of the same scores is not the one-vs-rest answer
    assert not np.allclose(logreg_predict_proba(Xt, sk.coef_, sk.intercept_, "x"), mine)


def test_logreg_sgd_binary_case_keeps_both_classes():
    X, y = _bumps(20, 2, 30, seed=6)
    cfg = LogRegConfig(feature="x", solver="sgd", alphas=(1e-3,), l1_ratios=(1.0,), cv_folds=0)
    fit = fit_logreg(X, y, 3, cfg)
    proba = logreg_predict_proba(X, fit.coef, fit.intercept, "x", multiclass="ovr")
    assert np.allclose(proba.sum(1), 1) and float((proba.argmax(1) == y).mean()) > 0.8


def test_logreg_config_refuses_unknown_solver():
    with pytest.raises(ValueError, match="solver must be one of"):
        LogRegConfig(solver="lbfgs")
    with pytest.raises(ValueError, match="multiclass must be"):
        logreg_predict_proba(np.zeros((1, 5)), np.zeros((2, 5)), np.zeros(2), "x", multiclass="x")


def test_one_vs_rest_probabilities_keep_the_order_of_very_negative_scores():
    # scores -50, -60, -70: each sigmoid is tiny, the ranking must survive
    coef = np.zeros((3, 2), dtype=np.float32)
    intercept = np.array([-60.0, -50.0, -70.0])
    proba = logreg_predict_proba(np.zeros((1, 2)), coef, intercept, "x", multiclass="ovr")
    assert np.allclose(proba.sum(), 1)
    assert proba[0].argsort().tolist() == [2, 0, 1]
    assert proba[0, 1] / proba[0, 0] == pytest.approx(np.exp(10.0), rel=1e-6)


# --------------------------------------------------------------------------- NumPy forward


def _trained_like(kind: str, cfg, seed: int):
    """A network with non-trivial batch-norm statistics (as after training), in eval mode."""
    torch.manual_seed(seed)
    net = build_network(kind, cfg)
    net.train()
    with torch.no_grad():
        for _ in range(3):
            if kind == "pdfsg-net" and cfg.composition_dim:
                net(torch.rand(32, cfg.npoints), comp=torch.rand(32, cfg.composition_dim))
            else:
                net(torch.rand(32, cfg.npoints) * 2 - 0.5)
    return net.eval()


def _state(net) -> dict[str, np.ndarray]:
    return {k: v.numpy() for k, v in net.state_dict().items()}


@pytest.mark.parametrize("composition_dim", [0, 12])
def test_numpy_pdfsg_net_equals_torch_for_any_length_start_and_composition(composition_dim):
    from pdfsg.models.numpy_net import numpy_network, softmax

    cfg = PdfsgNetConfig(n_classes=9, composition_dim=composition_dim, composition_hidden=16)
    net = _trained_like("pdfsg-net", cfg, seed=composition_dim)
    fast = numpy_network("pdfsg-net", cfg.to_dict(), _state(net))
    rng = np.random.default_rng(7)
    comp = rng.random((5, composition_dim)).astype(np.float32) if composition_dim else None
    for length, start in ((209, 0), (140, 0), (100, 37), (8, 150), (9, 3)):
        X = rng.random((5, length)).astype(np.float32)
        with torch.no_grad():
            tc = None if comp is None else torch.from_numpy(comp)
            ref = torch.softmax(net(torch.from_numpy(X), start, tc), dim=1).numpy()
        got = softmax(fast(X, start, comp))
        assert np.abs(got - ref).max() < 1e-5, (length, start)
        assert got.argmax(1).tolist() == ref.argmax(1).tolist()
    if composition_dim:
        # no composition is the all-zero vector, as in torch; and it changes the answer
        X = rng.random((5, 209)).astype(np.float32)
        assert np.array_equal(fast(X), fast(X, 0, np.zeros_like(comp)))
        assert not np.allclose(fast(X, 0, comp), fast(X))
        with torch.no_grad():
            ref = torch.softmax(net(torch.from_numpy(X)), dim=1).numpy()
        assert np.abs(softmax(fast(X)) - ref).max() < 1e-5


def test_numpy_pdfsg_net_features_are_what_its_head_reads():
    from pdfsg.models.numpy_net import numpy_network

    cfg = PdfsgNetConfig(n_classes=7, composition_dim=6, composition_hidden=8)
    net = _trained_like("pdfsg-net", cfg, seed=11)
    fast = numpy_network("pdfsg-net", cfg.to_dict(), _state(net))
    X = np.random.default_rng(3).random((4, 150)).astype(np.float32)
    with torch.no_grad():
        x = torch.from_numpy(X)
        h = net.blocks(net.stem(net.input_norm(net._channels(x, 20))))
        ref = torch.cat([h.mean(dim=-1), h.amax(dim=-1)], dim=1).numpy()
    got = fast.features(X, 20)
    assert got.shape == (4, 2 * cfg.stages[-1][0])
    assert np.abs(got - ref).max() < 1e-4 * max(1.0, float(np.abs(ref).max()))
    # different curves give different features (they are not the constant of an unused path)
    assert not np.allclose(got[0], got[1])


@pytest.mark.parametrize("batch_norm", [True, False])
def test_numpy_paper_cnn_equals_torch(batch_norm):
    from pdfsg.models.numpy_net import numpy_network, softmax

    cfg = PaperCNNConfig(n_classes=6, filters=(16, 8), kernel_size=7, batch_norm=batch_norm)
    net = _trained_like("cnn-paper", cfg, seed=1)
    fast = numpy_network("cnn-paper", cfg, _state(net))
    X = np.random.default_rng(2).random((70, 209)).astype(np.float32)
    with torch.no_grad():
        ref = torch.softmax(net(torch.from_numpy(X)), dim=1).numpy()
    assert np.abs(softmax(fast(X)) - ref).max() < 1e-5
    with pytest.raises(ValueError, match=r"expects \(n, 209\)"):
        fast(X[:, :100])


def test_numpy_forward_refuses_configs_and_weights_it_does_not_know():
    import dataclasses

    from pdfsg.models.numpy_net import _FIELDS, _INERT, BN_EPS, network_config, numpy_network

    # every batch norm of the torch networks uses the epsilon the folding assumes
    for net in (PdfsgNet(PdfsgNetConfig(composition_dim=3)), PaperCNN(PaperCNNConfig())):
        eps = {m.eps for m in net.modules() if isinstance(m, torch.nn.BatchNorm1d)}
        assert eps == {BN_EPS}
    # every field of the torch configs is either read by the NumPy forward or inert in eval
    for kind, cls in (("pdfsg-net", PdfsgNetConfig), ("cnn-paper", PaperCNNConfig)):
        fields = {f.name for f in dataclasses.fields(cls)}
        assert fields == set(_FIELDS[kind]) | set(_INERT[kind]), kind
    cfg = PdfsgNetConfig(n_classes=5, stem_channels=8, stages=((8, 2, 1),))
    state = _state(_trained_like("pdfsg-net", cfg, seed=0))
    with pytest.raises(ValueError, match=r"unknown pdfsg-net config field\(s\): \['squeeze'\]"):
        network_config("pdfsg-net", {**cfg.to_dict(), "squeeze": 4})
    old = {k: v for k, v in cfg.to_dict().items() if not k.startswith("composition")}
    assert network_config("pdfsg-net", old).composition_dim == 0  # manifests from before it
    with pytest.raises(ValueError, match="unexpected weight"):
        numpy_network("pdfsg-net", cfg, {**state, "extra.weight": np.zeros(3)})
    six = PdfsgNetConfig(n_classes=6, stem_channels=8, stages=((8, 2, 1),))
    with pytest.raises(ValueError, match=r"weight 'head\.weight' has shape"):
        numpy_network("pdfsg-net", six, state)


def test_net_classifier_numpy_and_torch_engines_agree_and_take_composition():
    from pdfsg.models import NetClassifier

    params = PdfParams()
    cfg = PdfsgNetConfig(n_classes=4, composition_dim=5, composition_hidden=8)
    nets = [_trained_like("pdfsg-net", cfg, seed=s) for s in (3, 4)]
    clf = NetClassifier("pdfsg-net", (2, 14, 62, 225), params, cfg.to_dict(), nets)
    assert clf.uses_composition and clf.n_members == 2
    X = np.random.default_rng(5).random((11, 150)).astype(np.float32)
    comp = np.random.default_rng(6).random((11, 5)).astype(np.float32)
    fast = clf.predict_proba(X, start=30, comp=comp)
    clf.engine = "torch"
    ref = clf.predict_proba(X, start=30, comp=comp)
    assert np.abs(fast - ref).max() < 1e-5 and np.allclose(fast.sum(1), 1)
    with pytest.raises(Exception, match=r"composition must have shape \(11, 5\)"):
        clf.predict_proba(X, comp=comp[:, :4])
    two = PdfsgNetConfig(n_classes=2)
    plain = NetClassifier(
        "pdfsg-net", (1, 2), params, two.to_dict(), [_trained_like("pdfsg-net", two, seed=0)]
    )
    assert not plain.uses_composition
    # a G(r)-only network ignores a composition, as the torch module does
    assert np.array_equal(plain.predict_proba(X, comp=comp), plain.predict_proba(X))


def test_shipped_models_numpy_forward_equals_torch_on_the_example_file():
    from pdfsg.io import read_pdf_file
    from pdfsg.predict import Predictor, example_files
    from pdfsg.preprocess import prepare_input

    pred = Predictor.load()
    data = read_pdf_file(example_files()[0])
    networks = [m for family in pred.models for m in getattr(family, "members", [family])]
    assert len(networks) >= 4  # per r range the composition-aware network and pdfsg-v2
    for model in networks:
        assert model.manifest["weights"] and all(
            w["file"].endswith(".npz") for w in model.manifest["weights"]
        )
        prep = prepare_input(data.r, data.g, model.params, qmax_data=data.qmax)
        X = np.stack([prep.x, prep.x[::-1].copy()])  # the curve, and a far-off input
        model.engine = "numpy"
        fast = model.predict_proba(X)
        short = model.predict_proba(X[:, 10:120], start=10)
        model.engine = "torch"
        assert np.abs(fast - model.predict_proba(X)).max() < 1e-5
        assert np.abs(short - model.predict_proba(X[:, 10:120], start=10)).max() < 1e-5

"""Proofs for every size: the book's identities in index notation, with the sizes as symbols.

Each test is one proof, written as a chapter would show it: sizes from ``dimensions``, indices that know
their range from ``indices``, tensors written by their entries from ``tensors``; ``diff_entry``
differentiates with respect to one entry and carries out the sums over Kronecker deltas that this gives;
``canonical`` brings both sides of an identity to one normal form for sums.  Every identity is proved
with ``assert_identity(..., sizes="all")``.  Each proof is then checked against the fixed-size
machinery: ``at_sizes`` writes the general result out at concrete sizes, where it must equal what the
book's fixed-size route (``symbolic_mlp``, ``Matrix.jacobian``, ``sympy.stats``, the optimiser
recursions written step by step) gives.
"""

import pytest
import sympy as sp
from sympy.stats import E, Normal, Uniform

from bplib.symbolic import (
    ACTIVATIONS,
    at_sizes,
    backprop_gradients,
    canonical,
    derivative,
    diff_entry,
    dimensions,
    direct_gradients,
    evaluate_in_range,
    indices,
    output_error,
    plain_indices,
    replace_entries,
    softmax,
    symbolic_mlp,
    tensors,
)
from bplib.testing import assert_identity

sigma = ACTIVATIONS["any"]  # an undefined activation: what is proved holds for every differentiable one
sigma_prime = derivative("any")


def assert_sizes_commute(expr, entry, derivative_for_every_size, values, *, claim):
    """Fixing the sizes and then differentiating gives what differentiating for every size gives at those sizes."""
    entry_at = entry.func(entry.base, *(values.get(index, index) for index in entry.indices))
    assert_identity(
        sp.diff(at_sizes(expr, values), entry_at),
        at_sizes(derivative_for_every_size, values),
        claim=claim,
        sizes=", ".join(f"{key} = {value}" for key, value in values.items()),
    )


# ----------------------------------------------------------------------------------------- chapter 1


def test_chain_rule_for_maps_of_any_dimensions():
    # g: R^n -> R^k and f: R^k -> R^m whose every component is an undefined function of one linear combination
    # of its inputs (a "ridge function"): g_j(x) = φ_j(Σ_q B_jq x_q), f_i(u) = ψ_i(Σ_j A_ij u_j).  An undefined
    # SymPy function takes a fixed number of arguments, so a map of symbolic dimension cannot be an arbitrary
    # function of all its inputs.  The class holds every layer of a network, not every differentiable map:
    # for those the chapter's fixed-size proof (undefined maps R^2 -> R^3 -> R^2 -> R) stands.
    n, k, m = dimensions("n k m")
    q, r = indices("q r", n)  # coordinates of x in R^n
    j, l = indices("j l", k)  # coordinates of u = g(x) in R^k
    i = indices("i", m)  # coordinates of f(u) in R^m
    x, u, A, B = tensors("x u A B")
    phi, psi = sp.Function("phi"), sp.Function("psi")  # phi(j, .) is φ_j, psi(i, .) is ψ_i

    def g(j):
        return phi(j, sp.Sum(B[j, q] * x[q], q))

    def f(i, u):  # u(l): the l-th coordinate of the point
        return psi(i, sp.Sum(A[i, l] * u(l), l))

    J_composite = diff_entry(f(i, g), x[r])  # ∂(f∘g)_i / ∂x_r
    J_f = replace_entries(diff_entry(f(i, lambda l: u[l]), u[j]), u, g)  # ∂f_i/∂u_j at u = g(x)
    J_g = diff_entry(g(j), x[r])  # ∂g_j / ∂x_r
    assert_identity(
        canonical(J_composite), canonical(sp.Sum(J_f * J_g, j)),
        claim="Chain rule: (J_{f∘g})_ir = Σ_j (J_f)_ij (J_g)_jr for maps R^n → R^k → R^m of ridge functions",
        sizes="all",
    )  # fmt: skip

    # bookkeeping: at n = 2, k = 3, m = 2 the general entries equal Matrix.jacobian of the written-out map
    sizes = {n: 2, k: 3, m: 2}
    x_vec = sp.Matrix([x[0], x[1]])
    J_fixed = sp.Matrix([at_sizes(f(i, g), {**sizes, i: row}) for row in range(2)]).jacobian(x_vec)
    for row in range(2):
        for col in range(2):
            assert_identity(
                at_sizes(J_composite, {**sizes, i: row, r: col}), J_fixed[row, col],
                claim="The chain-rule Jacobian for every size, at n = 2, k = 3, m = 2, equals Matrix.jacobian",
                sizes="n = 2, k = 3, m = 2",
            )  # fmt: skip


# ------------------------------------------------------------------------------------- chapters 2-3


def test_output_error_for_mse():
    n = dimensions("n")
    i, p = indices("i p", n)
    z, y = tensors("z y")
    sigma_L = sp.Function("sigma_L")  # any differentiable output activation
    loss = sp.Sum((sigma_L(z[i]) - y[i]) ** 2, i) / 2
    delta = diff_entry(loss, z[p])
    assert_identity(
        canonical(delta), canonical((sigma_L(z[p]) - y[p]) * sp.diff(sigma_L(z[p]), z[p])),
        claim="For MSE with any output activation, δ^L = (a^L - y) ⊙ σ_L'(z^L), for every width",
        sizes="all",
    )  # fmt: skip
    loss_affine = sp.Sum((z[i] - y[i]) ** 2, i) / 2
    delta_affine = diff_entry(loss_affine, z[p])
    assert_identity(
        delta_affine, z[p] - y[p],
        claim="For MSE with an affine output layer, δ^L = z^L - y, for every width",
        sizes="all",
    )  # fmt: skip

    assert_sizes_commute(loss, z[p], delta, {n: 3, p: 2}, claim="The MSE output error at n = 3 equals ∂L/∂z_3")
    net = symbolic_mlp([2, 3], "any", "mse")  # its output layer is affine
    for row in range(3):
        assert_identity(
            at_sizes(delta_affine, {n: 3, p: row}, {z: net.z[-1], y: net.y}), output_error(net)[row],
            claim="The affine MSE output error for every width, at n = 3, equals bplib.symbolic.output_error",
            sizes="n = 3",
        )  # fmt: skip


def test_output_error_for_softmax_cross_entropy():
    n = dimensions("n")
    i, j, p = indices("i j p", n)
    z, y = tensors("z y")
    probability = lambda c: sp.exp(z[c]) / sp.Sum(sp.exp(z[j]), j)  # noqa: E731  softmax(z)_c
    loss = -sp.Sum(y[i] * sp.log(probability(i)), i)
    delta = diff_entry(loss, z[p])
    assert_identity(
        canonical(delta), canonical(sp.Sum(y[i], i) * probability(p) - y[p]),
        claim="For softmax + cross-entropy over n classes, δ^L = (Σ_i y_i) p - y for any target y",
        sizes="all",
    )  # fmt: skip
    on_simplex = canonical(delta).subs(canonical(sp.Sum(y[i], i)), 1)
    assert_identity(
        canonical(on_simplex), canonical(probability(p) - y[p]),
        claim="For softmax + cross-entropy over n classes with Σ_i y_i = 1, δ^L = p - y",
        sizes="all",
    )  # fmt: skip

    assert_sizes_commute(
        loss, z[p], delta, {n: 3, p: 0}, claim="The softmax-CE output error at n = 3 equals ∂L/∂z_1"
    )
    net = symbolic_mlp([2, 3], "any", "softmax_ce")  # its target sums to one
    for row in range(3):
        assert_identity(
            at_sizes(delta, {n: 3, p: row}, {z: net.z[-1], y: net.y}), output_error(net)[row],
            claim="The softmax-CE output error for every n, at n = 3 with Σ y = 1, equals output_error (p - y)",
            sizes="n = 3",
        )  # fmt: skip


def test_softmax_jacobian_and_its_product_with_a_vector():
    n = dimensions("n")
    i, j, q, r = indices("i j q r", n)
    z, v = tensors("z v")
    probability = lambda c: sp.exp(z[c]) / sp.Sum(sp.exp(z[j]), j)  # noqa: E731
    J = diff_entry(probability(i), z[q])  # ∂p_i / ∂z_q
    assert_identity(
        canonical(J), canonical(probability(i) * (sp.KroneckerDelta(i, q) - probability(q))),
        claim="The softmax Jacobian over n classes is ∂p_i/∂z_q = p_i([i = q] - p_q): diag(p) - p pᵀ",
        sizes="all",
    )  # fmt: skip
    jvp = evaluate_in_range(sp.Sum(J.subs(q, r) * v[r], r))  # (J v)_i
    assert_identity(
        canonical(jvp), canonical(probability(i) * v[i] - probability(i) * sp.Sum(probability(r) * v[r], r)),
        claim="The softmax Jacobian-vector product over n classes is J v = diag(p) v - p (pᵀ v)",
        sizes="all",
    )  # fmt: skip

    z_vec = sp.Matrix(sp.symbols("z_1:4", real=True))
    J_fixed = softmax(z_vec).jacobian(z_vec)
    for row in range(3):
        for col in range(3):
            assert_identity(
                at_sizes(J, {n: 3, i: row, q: col}, {z: z_vec}), J_fixed[row, col],
                claim="The softmax Jacobian for every n, at n = 3, equals Matrix.jacobian of bplib.symbolic.softmax",
                sizes="n = 3",
            )  # fmt: skip


def test_parameter_gradients_through_z():
    # L depends on the parameters of layer l only through z^l, and δ^l = ∂L/∂z^l is arbitrary: by the
    # chain rule, ∂L/∂θ = Σ_i δ_i ∂z_i/∂θ.
    n_out, n_in = dimensions("n_l n_{l-1}")
    i, p = indices("i p", n_out)
    j, q = indices("j q", n_in)
    W, a, b, delta = tensors("W a b delta")
    z = lambda i: sp.Sum(W[i, j] * a[j], j) + b[i]  # noqa: E731  z^l = W^l a^{l-1} + b^l
    through_z = sp.Sum(delta[i] * z(i), i)  # its derivative is Σ_i δ_i ∂z_i/∂θ: δ does not depend on θ
    dW, db = diff_entry(through_z, W[p, q]), diff_entry(through_z, b[p])
    assert_identity(dW, delta[p] * a[q], claim="∂L/∂W^l = δ^l (a^{l-1})ᵀ, for every pair of widths", sizes="all")
    assert_identity(db, delta[p], claim="∂L/∂b^l = δ^l, for every width", sizes="all")

    sizes = {n_out: 2, n_in: 3, p: 1, q: 2}
    for entry, gradient in ((W[p, q], dW), (b[p], db)):
        assert_sizes_commute(
            through_z, entry, gradient, sizes, claim=f"∂L/∂{entry} for every width, at widths 3 → 2, equals ∂/∂{entry}"
        )


def test_hidden_layer_recursion():
    n_next, n_l = dimensions("n_{l+1} n_l")
    i = indices("i", n_next)
    j, p = indices("j p", n_l)
    W, b, z, delta = tensors("W b z delta")  # W^{l+1}, b^{l+1}, z^l, δ^{l+1}
    z_next = lambda i: sp.Sum(W[i, j] * sigma(z[j]), j) + b[i]  # noqa: E731  z^{l+1} = W^{l+1} σ(z^l) + b^{l+1}
    delta_l = diff_entry(sp.Sum(delta[i] * z_next(i), i), z[p])  # δ^l_p = Σ_i δ^{l+1}_i ∂z^{l+1}_i/∂z^l_p
    assert_identity(
        canonical(delta_l), canonical(sp.Sum(W[i, p] * delta[i], i) * sigma_prime(z[p])),
        claim="δ^l = ((W^{l+1})ᵀ δ^{l+1}) ⊙ σ'(z^l) for every pair of widths and any σ",
        sizes="all",
    )  # fmt: skip

    W_fixed = sp.Matrix(2, 3, lambda r, c: sp.Symbol(f"w_{r + 1}{c + 1}", real=True))
    delta_fixed = sp.Matrix(sp.symbols("delta_1:3", real=True))
    z_fixed = sp.Matrix(sp.symbols("z_1:4", real=True))
    recursion = (W_fixed.T * delta_fixed).multiply_elementwise(z_fixed.applyfunc(sigma_prime))  # as backprop_gradients
    for row in range(3):
        assert_identity(
            at_sizes(delta_l, {n_next: 2, n_l: 3, p: row}, {W: W_fixed, delta: delta_fixed, z: z_fixed}),
            recursion[row],
            claim="The recursion for every width, at widths 3 → 2, equals the matrix form (Wᵀ δ) ⊙ σ'(z)",
            sizes="widths 3 → 2",
        )  # fmt: skip


def test_two_layer_network_direct_differentiation_equals_backpropagation():
    # The whole loss of a network with one hidden layer of any width, differentiated directly, against
    # the four equations.  Deeper networks follow by induction on the layers: each step is the hidden-layer
    # recursion and the parameter gradients above, identities between two layers of symbolic widths.
    n_0, n_1, n_2 = dimensions("n_0 n_1 n_2")
    i, r = indices("i r", n_2)
    j, p = indices("j p", n_1)
    k, q = indices("k q", n_0)
    W1, b1, W2, b2, x, y = tensors("W1 b1 W2 b2 x y")
    z1 = lambda j: sp.Sum(W1[j, k] * x[k], k) + b1[j]  # noqa: E731
    z2 = lambda i: sp.Sum(W2[i, j] * sigma(z1(j)), j) + b2[i]  # noqa: E731  affine output layer
    loss = sp.Sum((z2(i) - y[i]) ** 2, i) / 2

    delta2 = lambda i: z2(i) - y[i]  # noqa: E731  output error for MSE
    delta1 = sp.Sum(W2[i, p] * delta2(i), i) * sigma_prime(z1(p))  # the recursion, entry p
    gradients = {  # entry: (direct derivative, the four equations)
        W2[r, p]: (diff_entry(loss, W2[r, p]), delta2(r) * sigma(z1(p))),
        b2[r]: (diff_entry(loss, b2[r]), delta2(r)),
        W1[p, q]: (diff_entry(loss, W1[p, q]), delta1 * x[q]),
        b1[p]: (diff_entry(loss, b1[p]), delta1),
    }
    for entry, (direct, recursion) in gradients.items():
        assert_identity(
            canonical(direct), canonical(recursion),
            claim=f"Direct ∂L/∂{entry} of a two-layer MSE network of any widths equals the backpropagation formula",
            sizes="all",
        )  # fmt: skip

    net = symbolic_mlp([3, 2, 2], "any", "mse")
    names = {W1: net.weights[0], b1: net.biases[0], W2: net.weights[1], b2: net.biases[1], x: net.x, y: net.y}
    direct_W, direct_b = direct_gradients(net)
    recursion_W, recursion_b = backprop_gradients(net)
    sizes = {n_0: 3, n_1: 2, n_2: 2, r: 1, p: 0, q: 2}
    fixed = {W2[r, p]: (direct_W[1], recursion_W[1], (1, 0)), b2[r]: (direct_b[1], recursion_b[1], (1, 0)),
             W1[p, q]: (direct_W[0], recursion_W[0], (0, 2)), b1[p]: (direct_b[0], recursion_b[0], (0, 0))}  # fmt: skip
    for entry, (direct_fixed, recursion_fixed, at) in fixed.items():
        general = at_sizes(gradients[entry][0], sizes, names)
        for route, value in (("direct_gradients", direct_fixed[at]), ("backprop_gradients", recursion_fixed[at])):
            assert_identity(
                general, value,
                claim=f"∂L/∂{entry} for every width, at widths [3, 2, 2], equals bplib.symbolic.{route}",
                sizes="widths [3, 2, 2]",
            )  # fmt: skip


# ----------------------------------------------------------------------------------------- chapter 5


def test_batched_affine_layer():
    # Rows are samples: Z = A Wᵀ + 1_m bᵀ; the loss depends on the layer only through Z, with any Δ = ∂L/∂Z.
    m, n_out, n_in = dimensions("m n_out n_in")
    s = indices("s", m)
    i, p = indices("i p", n_out)
    j, q = indices("j q", n_in)
    W, b, A, Delta = tensors("W b A Delta")
    Z = lambda s, i: sp.Sum(A[s, j] * W[i, j], j) + b[i]  # noqa: E731
    through_Z = sp.Sum(sp.Sum(Delta[s, i] * Z(s, i), i), s)
    assert_identity(
        canonical(diff_entry(through_Z, W[p, q])), canonical(sp.Sum(Delta[s, p] * A[s, q], s)),
        claim="For a batched affine layer, ∂L/∂W = Δᵀ A, for every batch size and widths",
        sizes="all",
    )  # fmt: skip
    assert_identity(
        canonical(diff_entry(through_Z, b[p])), canonical(sp.Sum(Delta[s, p], s)),
        claim="For a batched affine layer, ∂L/∂b = Δᵀ 1_m: the broadcast bias sums the rows of Δ, for every m",
        sizes="all",
    )  # fmt: skip
    s_out = indices("s'", m)
    dA = diff_entry(through_Z, A[s_out, q])
    assert_identity(
        canonical(dA), canonical(sp.Sum(Delta[s_out, i] * W[i, q], i)),
        claim="For a batched affine layer, ∂L/∂A = Δ W, for every batch size and widths",
        sizes="all",
    )  # fmt: skip

    # bookkeeping: at m = 3, widths 2 → 2 the entries equal the matrix products of chapter 5's fixed-size proof
    A_fixed, W_fixed = sp.Matrix(3, 2, sp.symbols("a_1:7")), sp.Matrix(2, 2, sp.symbols("w_1:5"))
    Delta_fixed = sp.Matrix(3, 2, sp.symbols("Delta_1:7"))
    names, sizes = {A: A_fixed, W: W_fixed, Delta: Delta_fixed}, {m: 3, n_out: 2, n_in: 2}
    for row, col in ((0, 1), (1, 0)):
        assert_identity(
            at_sizes(diff_entry(through_Z, W[p, q]), {**sizes, p: row, q: col}, names),
            (Delta_fixed.T * A_fixed)[row, col],
            claim="∂L/∂W for every size, at m = 3 and widths 2 → 2, equals the matrix product Δᵀ A",
            sizes="m = 3, widths 2 → 2",
        )  # fmt: skip
        assert_identity(
            at_sizes(dA, {**sizes, s_out: 2 * row, q: col}, names), (Delta_fixed * W_fixed)[2 * row, col],
            claim="∂L/∂A for every size, at m = 3 and widths 2 → 2, equals the matrix product Δ W",
            sizes="m = 3, widths 2 → 2",
        )  # fmt: skip
    assert_identity(
        at_sizes(diff_entry(through_Z, b[p]), {**sizes, p: 1}, names), (Delta_fixed.T * sp.ones(3, 1))[1],
        claim="∂L/∂b for every size, at m = 3 and widths 2 → 2, equals Δᵀ 1_m",
        sizes="m = 3, widths 2 → 2",
    )  # fmt: skip


def test_gradient_of_the_mean_loss_is_the_mean_of_the_per_sample_gradients():
    m, n, k = dimensions("m n k")
    s = indices("s", m)
    i, p = indices("i p", n)
    j, q = indices("j q", k)
    W, b, X, Y = tensors("W b X Y")  # X, Y: one sample per row
    z = lambda s, i: sp.Sum(W[i, j] * X[s, j], j) + b[i]  # noqa: E731
    sample_loss = sp.Sum((sigma(z(s, i)) - Y[s, i]) ** 2, i) / 2  # the loss of sample s
    mean_loss = sp.Sum(sample_loss, s) / m
    per_sample = {W[p, q]: diff_entry(sample_loss, W[p, q]), b[p]: diff_entry(sample_loss, b[p])}  # sample s alone
    for entry, gradient in per_sample.items():
        assert_identity(
            canonical(diff_entry(mean_loss, entry)), canonical(sp.Sum(gradient, s) / m),
            claim=f"∂L/∂{entry} of the mean loss over a batch of any size m is the mean of per-sample gradients",
            sizes="all",
        )  # fmt: skip
    Delta = lambda s, i: (sigma(z(s, i)) - Y[s, i]) * sigma_prime(z(s, i)) / m  # noqa: E731  row s: δ_s / m
    assert_identity(
        canonical(diff_entry(mean_loss, b[p])), canonical(sp.Sum(Delta(s, p), s)),
        claim="For the mean loss, ∂L/∂b = Δᵀ 1_m = (1/m) Σ_s δ_s, for every batch size m",
        sizes="all",
    )  # fmt: skip
    assert_identity(
        canonical(diff_entry(mean_loss, W[p, q])), canonical(sp.Sum(Delta(s, p) * X[s, q], s)),
        claim="For the mean loss, ∂L/∂W = Δᵀ X with Δ holding δ_s / m as rows, for every batch size m",
        sizes="all",
    )  # fmt: skip

    sizes = {m: 2, n: 2, k: 2, p: 1, q: 0}
    assert_sizes_commute(
        mean_loss, W[p, q], diff_entry(mean_loss, W[p, q]), sizes,
        claim="The batch gradient for every m, at m = 2, equals ∂/∂W_21 of the written-out mean loss",
    )  # fmt: skip


# ----------------------------------------------------------------------------------------- chapter 6


def test_variance_of_a_pre_activation():
    # z = Σ_{j<n} w_j a_j.  E is linear, so it goes into the (finite) sums term by term; each term then uses
    #   (A1) the weights are independent of the activations: E[w_j a_j] = E[w_j] E[a_j],
    #        E[w_j w_l a_j a_l] = E[w_j w_l] E[a_j a_l];
    #   (A2) the weights are independent, zero-mean, of variance v: E[w_j] = 0, E[w_j w_l] = v [j = l];
    #   (A3) the activations have E[a_j] = μ and E[a_j²] = s for every j; they may depend on each other:
    #        E[a_j a_l] = M_jl is any matrix with diagonal s.
    n = dimensions("n")
    j, l = indices("j l", n)
    w, a, M = tensors("w a M")
    v, s = sp.symbols("v s", positive=True)
    mu = sp.Symbol("mu", real=True)
    z = sp.Sum(w[j] * a[j], j)
    z_squared = sp.Sum(sp.Sum(w[j] * a[j] * w[l] * a[l], l), j)
    assert_identity(canonical(z_squared), canonical(z**2), claim="z² = Σ_j Σ_l w_j a_j w_l a_l", sizes="all")

    E_w, E_ww = 0, v * sp.KroneckerDelta(j, l)  # (A2)
    E_a, E_aa = mu, M[j, l]  # (A3)
    mean_z = evaluate_in_range(sp.Sum(E_w * E_a, j))  # E[z] = Σ_j E[w_j] E[a_j], (A1)
    second_moment = evaluate_in_range(sp.Sum(sp.Sum(E_ww * E_aa, l), j))  # E[z²] = Σ_j Σ_l E[w_j w_l] E[a_j a_l]
    second_moment = evaluate_in_range(replace_entries(second_moment, M, lambda j, l: s if j == l else M[j, l]))  # (A3)
    assert_identity(mean_z, 0, claim="E[z] = 0 for z = Σ_j w_j a_j with zero-mean weights, any n", sizes="all")
    variance = second_moment - mean_z**2
    assert_identity(
        variance, n * v * s,
        claim="Var[z] = n Var[w] E[a²] for z = Σ_j w_j a_j, independent zero-mean weights, any n",
        sizes="all",
    )  # fmt: skip
    var_a = sp.Symbol("Var_a", positive=True)
    assert_identity(
        variance.subs(s, var_a + mu**2).subs(mu, 0), n * v * var_a,
        claim="With zero-mean activations (E[a²] = Var[a]), Var[z] = n Var[w] Var[a], any n",
        sizes="all",
    )  # fmt: skip
    q = sp.Symbol("q", positive=True)  # Var of the previous pre-activation; for ReLU of a symmetric one E[a²] = q/2
    assert_identity(
        variance.subs({s: q / 2, v: 2 / n}), q,
        claim="He: with E[relu(z)²] = Var[z]/2, Var[w] = 2/n keeps the variance of z through a ReLU layer, any n",
        sizes="all",
    )  # fmt: skip
    assert_identity(
        variance.subs({s: q, v: 1 / n}), q,
        claim="Xavier's forward condition: with E[a²] = Var[z] (a ≈ z), Var[w] = 1/n keeps the variance, any n",
        sizes="all",
    )  # fmt: skip

    # bookkeeping: at n = 3 with sympy.stats (normal weights, uniform inputs on (0, 1), all independent)
    weights = [Normal(f"w_{c}", 0, sp.sqrt(v)) for c in range(3)]
    inputs = [Uniform(f"a_{c}", 0, 1) for c in range(3)]
    z_fixed = sum(w_c * a_c for w_c, a_c in zip(weights, inputs))
    assert_identity(
        E(sp.expand(z_fixed**2)) - E(z_fixed) ** 2, variance.subs({n: 3, s: sp.Rational(1, 3)}),
        claim="Var[z] = n Var[w] E[a²] at n = 3 equals sympy.stats' variance for normal weights, U(0, 1) inputs",
        sizes="n = 3",
    )  # fmt: skip


def test_variance_of_a_backpropagated_error():
    # δ_j = σ'(z_j) Σ_{i<n_out} W_ij δ'_i, with δ' = δ^{l+1}, W = W^{l+1}.  E goes into the sums; each term uses
    #   (B1) σ'(z_j), W and δ' are treated as independent (the approximation of Glorot and Bengio (2010): δ'
    #        depends on z through the layers above), so E[σ'(z_j)² W_ij W_rj δ'_i δ'_r] factorises;
    #   (B2) the weights are independent, zero-mean, of variance v: E[W_ij W_rj] = v [i = r];
    #   (B3) E[σ'(z_j)²] = c, and E[δ'_i δ'_r] = D_ir, any matrix with diagonal d.
    n_out = dimensions("n_out")
    i, r = indices("i r", n_out)
    D = tensors("D")
    v, d, c = sp.symbols("v d c", positive=True)
    E_WW, E_dd = v * sp.KroneckerDelta(i, r), D[i, r]  # (B2), (B3)
    second_moment = evaluate_in_range(c * sp.Sum(sp.Sum(E_WW * E_dd, r), i))  # (B1)
    second_moment = evaluate_in_range(replace_entries(second_moment, D, lambda i, r: d if i == r else D[i, r]))  # (B3)
    assert_identity(
        second_moment, n_out * v * c * d,
        claim="E[(δ^l_j)²] = n_out Var[w] E[σ'²] E[(δ^{l+1})²] under the independence assumptions, any n_out",
        sizes="all",
    )  # fmt: skip
    # bookkeeping: at n_out = 2 with sympy.stats (normal weights, uniform errors, σ'(z_j) = κ), all independent
    kappa = sp.Symbol("kappa", positive=True)
    weights = [Normal(f"W_{r_}", 0, sp.sqrt(v)) for r_ in range(2)]
    errors = [Uniform(f"delta_{r_}", 0, 1) for r_ in range(2)]
    delta_j = kappa * sum(W_r * d_r for W_r, d_r in zip(weights, errors))
    assert_identity(
        E(sp.expand(delta_j**2)), second_moment.subs({n_out: 2, c: kappa**2, d: sp.Rational(1, 3)}),
        claim="E[δ_j²] = n_out Var[w] E[σ'²] E[δ'²] at n_out = 2 equals sympy.stats' expectation",
        sizes="n_out = 2",
    )  # fmt: skip
    assert_identity(
        second_moment.subs({v: 1 / n_out, c: 1}), d,
        claim="Xavier's backward condition: with σ' ≈ 1, Var[w] = 1/n_out keeps E[δ²] through a layer, any n_out",
        sizes="all",
    )  # fmt: skip


# ----------------------------------------------------------------------------------------- chapter 8


def test_momentum_unrolled_for_every_step():
    # torch.optim.SGD: b_1 = g_1, b_t = μ b_{t-1} + (1 - τ) g_t.  Proof by induction on t.
    t = dimensions("t")
    s = sp.Symbol("s", integer=True)
    mu, tau = sp.symbols("mu tau", positive=True)
    g = tensors("g")
    buffer = mu ** (t - 1) * g[1] + (1 - tau) * sp.Sum(mu ** (t - s) * g[s], (s, 2, t))  # the claimed b_t
    assert_identity(
        evaluate_in_range(buffer.subs(t, 1)), g[1],
        claim="The unrolled momentum buffer gives b_1 = g_1", sizes="t = 1, the start of the induction",
    )  # fmt: skip
    assert_identity(
        canonical(buffer.subs(t, t + 1)), canonical(mu * buffer + (1 - tau) * g[t + 1]),
        claim="b_t = μ^(t-1) g_1 + (1 - τ) Σ_(s=2..t) μ^(t-s) g_s obeys b_(t+1) = μ b_t + (1 - τ) g_(t+1), all t",
        sizes="all",
    )  # fmt: skip

    weight_sum = buffer.replace(lambda e: isinstance(e, sp.Indexed) and e.base == g, lambda e: 1)  # every g_s = 1
    closed = mu ** (t - 1) + (1 - tau) * (1 - mu ** (t - 1)) / (1 - mu)
    assert_identity(
        evaluate_in_range(weight_sum.subs(t, 1)), closed.subs(t, 1),
        claim="The weights of b_1 sum to 1, as the closed form says", sizes="t = 1, the start of the induction",
    )  # fmt: skip
    for expr, name in ((weight_sum, "Σ of the weights"), (closed, "μ^(t-1) + (1 - τ)(1 - μ^(t-1))/(1 - μ)")):
        assert_identity(
            canonical(expr.subs(t, t + 1)), canonical(mu * expr + 1 - tau),
            claim=f"{name} satisfies w_(t+1) = μ w_t + 1 - τ, every t: the two are equal by induction",
            sizes="all",
        )  # fmt: skip
    assert_identity(
        closed - 1, (mu - tau) * (1 - mu ** (t - 1)) / (1 - mu),
        claim="The momentum weights sum to 1 + (μ - τ)(1 - μ^(t-1))/(1 - μ): to 1 for all t ≥ 2 only if τ = μ",
        sizes="all",
    )  # fmt: skip

    # bookkeeping: the recursion written out step by step for t = 1..6 (chapter 8's fixed-t route)
    recursion = g[1]
    for step in range(1, 7):
        if step > 1:
            recursion = mu * recursion + (1 - tau) * g[step]
        assert_identity(
            at_sizes(buffer, {t: step}), recursion,
            claim=f"The unrolled buffer at t = {step} equals the recursion", sizes=f"t = {step}",
        )  # fmt: skip
        assert_identity(
            closed.subs(t, step), recursion.replace(lambda e: isinstance(e, sp.Indexed), lambda e: 1),
            claim=f"The closed weight sum at t = {step} equals the recursion's weights", sizes=f"t = {step}",
        )  # fmt: skip


def test_adam_bias_correction_for_every_step():
    # m_0 = 0, m_t = β₁ m_{t-1} + (1 - β₁) g_t; with E[g_s] = ḡ for every s (a stationary mean).
    t = dimensions("t")
    s = sp.Symbol("s", integer=True)
    beta = sp.Symbol("beta_1", positive=True)
    g_bar = sp.Symbol("gbar", real=True)
    g = tensors("g")
    average = (1 - beta) * sp.Sum(beta ** (t - s) * g[s], (s, 1, t))  # the claimed m_t
    assert_identity(
        evaluate_in_range(average.subs(t, 0)), 0,
        claim="The unrolled average gives m_0 = 0", sizes="t = 0, the start of the induction",
    )  # fmt: skip
    assert_identity(
        canonical(average.subs(t, t + 1)), canonical(beta * average + (1 - beta) * g[t + 1]),
        claim="m_t = (1 - β₁) Σ_(s=1..t) β₁^(t-s) g_s obeys m_(t+1) = β₁ m_t + (1 - β₁) g_(t+1), every t",
        sizes="all",
    )  # fmt: skip
    expected = average.replace(lambda e: isinstance(e, sp.Indexed) and e.base == g, lambda e: g_bar)  # linearity of E
    closed = (1 - beta**t) * g_bar
    assert_identity(
        evaluate_in_range(expected.subs(t, 0)), closed.subs(t, 0),
        claim="E[m_0] = 0 = (1 - β₁⁰) E[g]", sizes="t = 0, the start of the induction",
    )  # fmt: skip
    for expr, name in ((expected, "E[m_t]"), (closed, "(1 - β₁^t) E[g]")):
        assert_identity(
            canonical(expr.subs(t, t + 1)), canonical(beta * expr + (1 - beta) * g_bar),
            claim=f"{name} obeys e_(t+1) = β₁ e_t + (1 - β₁) E[g], every t: E[m_t] = (1 - β₁^t) E[g] by induction",
            sizes="all",
        )  # fmt: skip
    assert_identity(
        closed / (1 - beta**t), g_bar, claim="Adam's m̂_t = m_t/(1 - β₁^t) is unbiased, every t", sizes="all"
    )

    recursion = 0
    for step in range(1, 7):
        recursion = beta * recursion + (1 - beta) * g[step]
        assert_identity(at_sizes(average, {t: step}), recursion, claim=f"The unrolled m_{step} equals the recursion",
                        sizes=f"t = {step}")  # fmt: skip


# ------------------------------------------------------------------------- Part IV: the tangent kernel


def test_neural_tangent_kernel_of_one_layer_factorises():
    # A scalar output f depends on layer l's parameters through z^l = W^l a^{l-1} + b^l; at the inputs x and x'
    # the layer sees a, a' and receives δ = ∂f/∂z^l, δ' (arbitrary: whatever the layers above make of them).
    n_out, n_in = dimensions("n_l n_{l-1}")
    i, p = indices("i p", n_out)
    j, q = indices("j q", n_in)
    W, b, a, a2, delta, delta2 = tensors("W b a a' delta delta'")

    def gradients(a, delta):
        """∂f/∂W^l_pq and ∂f/∂b^l_p at an input whose layer l sees a and receives δ."""
        through_z = sp.Sum(delta[i] * (sp.Sum(W[i, j] * a[j], j) + b[i]), i)
        return diff_entry(through_z, W[p, q]), diff_entry(through_z, b[p])

    (dW, db), (dW2, db2) = gradients(a, delta), gradients(a2, delta2)
    kernel = sp.Sum(sp.Sum(dW * dW2, q), p) + sp.Sum(db * db2, p)  # ⟨∂f/∂W, ∂f/∂W'⟩_F + ⟨∂f/∂b, ∂f/∂b'⟩
    assert_identity(
        canonical(kernel), canonical(sp.Sum(delta[p] * delta2[p], p) * (sp.Sum(a[q] * a2[q], q) + 1)),
        claim="Layer l's term of the empirical NTK is (δ^l · δ'^l)(a^{l-1} · a'^{l-1} + 1), for all widths",
        sizes="all",
    )  # fmt: skip

    # bookkeeping: the NTK of a [2, 3, 1] network by Jacobian contraction equals the sum of the per-layer terms
    net = symbolic_mlp([2, 3, 1], "any", "mse")
    x2 = sp.Matrix(sp.symbols("x'_1:3", real=True))
    at_x2 = dict(zip(net.x, x2))
    f = net.z[-1][0]
    parameters = [entry for block in (*net.weights, *net.biases) for entry in block]
    ntk_contraction = sum(sp.diff(f, theta) * sp.diff(f, theta).xreplace(at_x2) for theta in parameters)
    deltas = [(net.weights[1].T * sp.Matrix([1])).multiply_elementwise(net.z[0].applyfunc(sigma_prime)), sp.Matrix([1])]
    ntk_layers = 0
    for layer, width in ((0, (3, 2)), (1, (1, 3))):
        names = {a: net.a[layer], delta: deltas[layer]}
        names |= {a2: names[a].xreplace(at_x2), delta2: names[delta].xreplace(at_x2)}
        ntk_layers += at_sizes(kernel, {n_out: width[0], n_in: width[1]}, names)
    assert_identity(
        ntk_layers, ntk_contraction,
        claim="The per-layer NTK, summed over the layers of a [2, 3, 1] network, equals the Jacobian-contraction NTK",
        sizes="widths [2, 3, 1]",
    )  # fmt: skip


# ------------------------------------------------------------------------------------ the proofs can fail


def test_wrong_formulas_are_not_proved():
    """The same steps refuse the usual slips: a transpose, a missing factor, a wrong exponent, a dropped term."""
    n, k, t = dimensions("n k t")
    i, j2, p = indices("i j' p", n)
    j, q = indices("j q", k)
    W, a, b, y, z, delta = tensors("W a b y z delta")
    through_z = sp.Sum(delta[i] * (sp.Sum(W[i, j] * a[j], j) + b[i]), i)
    probability = lambda c: sp.exp(z[c]) / sp.Sum(sp.exp(z[j2]), j2)  # noqa: E731
    softmax_ce = -sp.Sum(y[i] * sp.log(probability(i)), i)
    next_layer = sp.Sum(delta[i] * (sp.Sum(W[i, j] * sigma(z[j]), j) + b[i]), i)
    s = sp.Symbol("s", integer=True)
    mu, tau = sp.symbols("mu tau", positive=True)
    g = tensors("g")
    buffer = mu ** (t - 1) * g[1] + (1 - tau) * sp.Sum(mu ** (t - s + 1) * g[s], (s, 2, t))  # exponent one too high
    wrong = {
        "∂L/∂W = a δᵀ (transposed)": (diff_entry(through_z, W[p, q]), delta[q] * a[p]),
        "softmax-CE δ = p - y without Σ y = 1": (diff_entry(softmax_ce, z[p]), probability(p) - y[p]),
        "δ^l = (W^{l+1})ᵀ δ^{l+1} without σ'": (diff_entry(next_layer, z[q]), sp.Sum(W[i, q] * delta[i], i)),
        "momentum with μ^(t-s+1)": (buffer.subs(t, t + 1), mu * buffer + (1 - tau) * g[t + 1]),
        "NTK term without the bias": (
            sp.Sum(sp.Sum(delta[p] * a[q] * delta[p] * a[q], q), p) + sp.Sum(delta[p] ** 2, p),
            sp.Sum(delta[p] ** 2, p) * sp.Sum(a[q] ** 2, q),
        ),
    }
    for claim, (lhs, rhs) in wrong.items():
        with pytest.raises(AssertionError, match="could not reduce"):
            assert_identity(canonical(lhs), canonical(rhs), claim=claim, sizes="all")


def test_plain_indices_prints_indices_by_name_and_keeps_the_sum():
    n = dimensions("n")
    j = indices("j", n)
    W, a = tensors("W a")
    expr = sp.Sum(W[0, j] * a[j], j)
    shown = plain_indices(expr)
    assert not shown.atoms(sp.Idx), "no index with a range is left"
    assert sp.latex(shown) == r"\sum_{j=0}^{n - 1} {W}_{0,j} {a}_{j}"
    assert r"\nobreak" not in sp.latex(shown) and r"\nobreak" in sp.latex(expr)
    assert at_sizes(shown, {n: 2}) == at_sizes(expr, {n: 2}), "the same sum, written out"
    with pytest.raises(TypeError, match=r"plain_indices: argument 'expr' must be a SymPy expression"):
        plain_indices("W[j]")

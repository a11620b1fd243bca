"""The guided lesson: one short step per concept, in teaching order. Text and links only; demos are elsewhere."""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import urlencode

Z2, Z16, AE, CVAE = "mnist-vae-mlp-z2", "mnist-vae-mlp-z16", "mnist-ae-mlp-z2", "mnist-cvae-mlp-z2"


@dataclass(frozen=True)
class Step:
    """One lesson step: a few sentences, a formula (LaTeX), a prompt, and the page that explores it."""

    key: str
    title: str
    body: str
    formula: str
    try_this: str
    page: str  # URL path of the page to explore it in full
    params: dict[str, str] = field(default_factory=dict)  # query parameters preset there

    @property
    def link(self) -> str:
        """The page's URL path with its query string."""
        return self.page + ("?" + urlencode(self.params) if self.params else "")


STEPS: tuple[Step, ...] = (
    Step(
        "ae-vs-vae",
        "Autoencoder or VAE",
        "An autoencoder squeezes an image into a short code and rebuilds it. It learns a point per image. "
        "A VAE learns a small cloud per image, a Gaussian q(z|x), and is pushed to keep those clouds close to N(0, I). "
        "That is what lets us draw new codes and decode them into new images.",
        r"\text{AE: } z = f(x) \qquad \text{VAE: } q(z\mid x) = \mathcal{N}\big(\mu(x),\ \mathrm{diag}\,\sigma^2(x)\big)",
        "Compare the two diagrams: where does the VAE have two outputs where the AE has one?",
        "/latent-map",
        {"model": AE, "method": "raw"},
    ),
    Step(
        "latent-space",
        "The latent space",
        "Every test image becomes a point μ(x) in the latent space. Here the space has two dimensions, so we see it as it is. "
        "Similar digits land near each other, with no labels used in training.",
        r"x \in [0,1]^{784} \;\xrightarrow{\ \text{encoder}\ }\; \mu(x) \in \mathbb{R}^{z}",
        "Find the class that sits between 4 and 9. Why might those two share a border?",
        "/latent-map",
        {"model": Z2, "method": "raw"},
    ),
    Step(
        "elbo",
        "ELBO = reconstruction + KL",
        "Training maximises the evidence lower bound. Its first term rewards rebuilding the image; the second charges "
        "for how far each image's cloud strays from the prior. We report the negative ELBO in nats: lower is better.",
        r"-\mathrm{ELBO}(x) = \underbrace{-\mathbb{E}_{q(z\mid x)}[\log p(x\mid z)]}_{\text{reconstruction}}"
        r" + \underbrace{\mathrm{KL}\big(q(z\mid x)\,\|\,\mathcal{N}(0, I)\big)}_{\text{regulariser}}",
        "Pick a few images: which ones cost the most nats, and is it the reconstruction or the KL?",
        "/generate",
        {"model": Z2},
    ),
    Step(
        "bce-vs-mse",
        "BCE or MSE reconstruction",
        "The reconstruction term is a log-likelihood: Bernoulli pixels give binary cross-entropy, Gaussian pixels give squared error. "
        "Summed squared error on [0, 1] pixels is small, so the KL weighs relatively more and the samples blur. "
        "Both models below are the same 784-100-2 network, trained each way.",
        r"\mathrm{BCE} = -\sum_i \big[x_i \log \hat x_i + (1-x_i)\log(1-\hat x_i)\big] \qquad "
        r"\mathrm{MSE} = \sum_i (x_i - \hat x_i)^2",
        "Which model keeps the thin strokes of a 1 or a 7?",
        "/generate",
        {"model": Z2},
    ),
    Step(
        "reparam",
        "The reparameterisation trick",
        "Sampling is not differentiable, so the noise is drawn apart: ε ~ N(0, I), and z = μ + σ⊙ε. "
        "Then the gradient of the loss reaches μ and σ, and through them the encoder. "
        "On a 2-D model we can draw the whole cloud q(z|x) that z is drawn from.",
        r"z = \mu(x) + \sigma(x) \odot \varepsilon,\quad \varepsilon \sim \mathcal{N}(0, I)"
        r"\qquad \frac{\partial L}{\partial \mu} = \frac{\partial L}{\partial z},\quad"
        r"\frac{\partial L}{\partial \sigma} = \frac{\partial L}{\partial z}\odot\varepsilon",
        "Change the seed: z moves, μ and σ do not. Find an image whose cloud is wide: is it an ambiguous digit?",
        "/latent-map",
        {"model": Z2, "method": "raw"},
    ),
    Step(
        "beta",
        "β and disentanglement",
        "A β above 1 charges more for the KL. The model then keeps fewer, more independent directions, "
        "each often tied to one visible factor like slant or width. Too much β and reconstructions blur.",
        r"L_\beta(x) = -\mathbb{E}_{q}[\log p(x\mid z)] + \beta\,\mathrm{KL}\big(q(z\mid x)\,\|\,p(z)\big)",
        "Read each row of the grid: does one dimension change one thing? Then train β = 4 on /train and compare.",
        "/traverse",
        {"model": Z16},
    ),
    Step(
        "collapse",
        "Posterior collapse and active dimensions",
        "When the KL wins, q(z|x) equals the prior for some dimensions: they carry nothing and the decoder ignores them. "
        "We call a dimension active when its mean KL is above 0.01 nats. A VAE given more dimensions than it needs "
        "switches the spare ones off: see the grey bars of z = 32 and z = 64. "
        "Strong decoders, MSE and a large β make it worse.",
        r"\mathrm{KL}_j = \mathbb{E}_x\, \tfrac12\big(\mu_j^2 + \sigma_j^2 - \log\sigma_j^2 - 1\big) \qquad "
        r"\text{active}_j \iff \mathrm{KL}_j > 0.01",
        "Switch between the latent sizes: how many dimensions does each model really use, and does z = 64 use more "
        "than z = 32?",
        "/traverse",
        {"model": Z16},
    ),
    Step(
        "latent-size",
        "Under- and over-complete latents",
        "Too few dimensions and the code cannot hold the digit: reconstructions are poor. "
        "Past about 16, a VAE gains little: its KL budget stops growing, and the dimensions it does not need fall "
        "below 0.01 nats and go inactive (the title and the labels of the right panel count them). "
        "An autoencoder with a code as large as the image (784 numbers) pays no KL and reconstructs best, "
        "but it has no prior to sample from.",
        r"z \in \{1, 2, 4, 8, 16, 32, 64\}\ (\text{VAE}),\ 784\ (\text{AE})\qquad "
        r"\#\text{active} = \#\{j : \mathrm{KL}_j > 0.01\} \le z",
        "Where does the KL curve flatten? Compare the orange curve (dimensions that hold 90% of the KL) with the diagonal.",
        "/generate",
        {},
    ),
    Step(
        "sampling",
        "Sampling from the prior, with temperature",
        "To make a new image, draw z from N(0, I) and decode it. "
        "Scaling the draw by a temperature T below 1 stays near the centre: cleaner but less varied images.",
        r"z \sim \mathcal{N}(0, T^2 I),\qquad \hat x = \mathrm{decoder}(z)",
        "Set T to 0.3, then to 1.5: which digits appear, and how clean are they?",
        "/generate",
        {"model": Z16},
    ),
    Step(
        "interpolation",
        "Interpolation: lerp or slerp",
        "Walking from one code to another decodes a morph. In many dimensions prior samples sit on a shell of radius about √z, "
        "and a straight line cuts through the centre, which no sample visits. Slerp follows the shell.",
        r"\mathrm{slerp}(z_0, z_1; t) = \frac{\sin((1-t)\Omega)}{\sin\Omega} z_0 + \frac{\sin(t\Omega)}{\sin\Omega} z_1",
        "Watch log p(z): the straight line climbs out of the prior's typical band in the middle; slerp does not.",
        "/arithmetic",
        {"model": Z16, "tab": "interpolation"},
    ),
    Step(
        "arithmetic",
        "Latent arithmetic",
        "Directions in a smooth latent space carry meaning. "
        "The code of a minus the code of b, added to c, moves c the way a differs from b.",
        r"z = \mu(a) - \mu(b) + \mu(c)",
        "Try a thick and a thin digit of the same class as a and b.",
        "/arithmetic",
        {"model": Z16},
    ),
    Step(
        "cvae",
        "The conditional VAE",
        "A CVAE gives the class to both encoder and decoder. The code is then free to hold only the style. "
        "The same z decoded with each class writes ten digits in one hand.",
        r"q(z\mid x, y),\quad p(x\mid z, y)",
        "Change the style code: does every digit in the row follow it?",
        "/generate",
        {"model": CVAE},
    ),
    Step(
        "anomaly",
        "Anomaly detection and denoising",
        "An image unlike the training data gets a high −ELBO: the model cannot explain it cheaply. "
        "Decoding the code of a noisy image gives back a clean digit, because the decoder only knows clean ones.",
        r"\text{score}(x) = -\mathrm{ELBO}(x) \qquad \hat x = \mathrm{decoder}(\mu(\tilde x))",
        "Raise the noise: when does the reconstruction turn into another digit?",
        "/generate",
        {"model": Z16},
    ),
    Step(
        "clustering",
        "Clustering the codes",
        "k-means on μ groups the codes without labels. "
        "The adjusted Rand index (ARI) and normalised mutual information (NMI) say how well those groups match the classes: 1 is perfect, 0 is chance.",
        r"\min_{c_1..c_k} \sum_i \min_j \|\mu(x_i) - c_j\|^2",
        "Which two digits does k-means merge? Are they neighbours on the map?",
        "/latent-map",
        {"model": Z16, "method": "pca"},
    ),
    Step(
        "projections",
        "PCA, t-SNE and UMAP",
        "A 16-d space must be flattened to be seen. PCA is a linear view and keeps global distances; "
        "t-SNE and UMAP keep neighbourhoods and bend the rest. 10-NN accuracy and trustworthiness say how much each map keeps.",
        r"\mathrm{T}(k) = 1 - \tfrac{2}{nk(2n-3k-1)} \sum_i \sum_{j \in U_k(i)} (r(i,j) - k)",
        "Which map separates the classes best, and which one keeps the most neighbours?",
        "/latent-map",
        {"model": Z16, "method": "tsne"},
    ),
    Step(
        "aggregate",
        "Prior against aggregate posterior",
        "The prior is what we sample from; the aggregate posterior is where the data's codes actually are. "
        "Where the prior puts mass and the data does not, samples decode to blurry non-digits: the holes.",
        r"q(z) = \frac{1}{N}\sum_{n} q(z\mid x_n) \quad\text{vs}\quad p(z) = \mathcal{N}(0, I)",
        "Find prior samples with no data around them, and decode one on the latent map.",
        "/latent-map",
        {"model": Z2, "method": "raw", "prior": "1"},
    ),
    Step(
        "shared",
        "A shared latent space",
        "A joint VAE encodes two modalities, digits and garments, into one space. "
        "A digit's code then finds garments of the same class index, and the other way round.",
        r"q(z\mid x_1, x_2) \propto q(z\mid x_1)\, q(z\mid x_2)\, p(z)",
        "Pick a digit: are its nearest garments all of one kind?",
        "/shared",
        {},
    ),
    Step(
        "anchors",
        "Anchors: steering where data lands",
        "An anchor loss pulls images that look like a prototype towards a chosen point of the latent space. "
        "The KL is computed on a shifted mean, so the rest of the training is unchanged.",
        r"\mathrm{KL}\Big(\mathcal{N}\big(\mu - r\textstyle\sum_k s_k(x)\,t_k,\ \sigma^2\big)\,\Big\|\,\mathcal{N}(0, I)\Big)",
        "Are the zeros where the donut anchor points? Compare with the plain model.",
        "/anchors",
        {"model": "mnist-vae-mlp-z2-anchored"},
    ),
)


def step_index(value: object) -> int:
    """The 0-based step for a ``?step=`` value (1-based number or key); 0 when unknown."""
    text = str(value or "").strip()
    if text.isdigit():
        return min(max(int(text) - 1, 0), len(STEPS) - 1)
    keys = [s.key for s in STEPS]
    return keys.index(text) if text in keys else 0

"""KunlunModel: context tokens and event streams through L layers of {pffn, swa, hsp, interaction}, then the head.

Per layer l (components as the CompSkip plan says):
    X_sum = Summary_l(X)                                  L{l}.ctx.summary   (where a kvgen uses it)
    per stream e: K, V = KvGen(X_sum); S_e = PFFN(S_e)      L{l}.e.kvgen / .pffn
                  S_e = SWA(S_e)                          L{l}.e.swa
                  H_e = HSP(S_e)                          L{l}.e.hsp         (else: the last H_e is reused)
    X = MoWukong([X ; H_1 ; ... ; H_E])                   L{l}.interaction
The summary is taken from S after this layer's transformer block (KUNLUN.md 6.6: "S^{l+1}"), so a layer's
sequence work reaches the interaction of the same layer. Families `interformer` and `wukong` use the same modules.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.autograd.profiler import record_function

from kunlun.model.batch import Batch, JaggedStream
from kunlun.model.config import KunlunConfig
from kunlun.model.context import ContextTokens, GatedSummary
from kunlun.model.head import Head
from kunlun.model.hsp import SeedPooling
from kunlun.model.kvgen import KvGen
from kunlun.model.pffn import PersonalizedFFN
from kunlun.model.plan import plan
from kunlun.model.stream import StreamEmbedding, truncate
from kunlun.model.swa import WindowedSelfAttention
from kunlun.model.wukong import WukongExperts


class _StreamState:
    """A stream's jagged tokens and the per-token quantities every layer reuses."""

    def __init__(self, stream: JaggedStream, request_time: Tensor, embed: StreamEmbedding):
        self.offsets = stream.offsets
        lengths = stream.lengths
        self.max_len = int(lengths.max()) if lengths.numel() else 0
        batch = torch.repeat_interleave(torch.arange(lengths.numel(), device=lengths.device), lengths)
        self.position = torch.arange(batch.numel(), device=lengths.device) - stream.offsets[batch]
        self.length = lengths[batch]
        self.dt = request_time[batch] - stream.timestamps
        self.s = embed(stream, self.dt, self.position, self.length)  # (sum T, d_e)


class KunlunModel(nn.Module):
    def __init__(self, config: KunlunConfig):
        super().__init__()
        self.config = config
        m = config.model
        self.sites = plan(config)
        n_ctx = config.num_context_tokens
        self.ctx_tokens = ContextTokens(config)
        self.summaries = nn.ModuleDict({site.slot: GatedSummary(n_ctx, m.summary_tokens, m.d_model)
                                        for site in self.sites if site.component == "summary"})
        self.embed = nn.ModuleDict()
        self.kvgen, self.pffn, self.swa, self.hsp = nn.ModuleDict(), nn.ModuleDict(), nn.ModuleDict(), nn.ModuleDict()
        builders = {"kvgen": lambda s, site: KvGen(m, s), "pffn": lambda s, site: PersonalizedFFN(s),
                    "swa": lambda s, site: WindowedSelfAttention(s, site.window, m.rote),
                    "hsp": lambda s, site: SeedPooling(s, m.d_model)}
        for site in self.sites:
            if site.stream is not None:
                getattr(self, site.component)[site.slot] = builders[site.component](m.stream(site.stream), site)
        for name in config.sequence_streams:
            self.embed[name] = StreamEmbedding(config, name, self.ctx_tokens.shared_for(config, name))
        n_in = config.num_interaction_tokens
        self.interaction = nn.ModuleDict({site.slot: WukongExperts(n_in, n_ctx, m.d_model, m.interaction)
                                          for site in self.sites if site.component == "interaction"})
        self.head = Head(config)

    def sparse_parameters(self) -> list[nn.Parameter]:
        return [p for mod in self.modules() if isinstance(mod, nn.Embedding) for p in mod.parameters()]

    def dense_parameters(self) -> list[nn.Parameter]:
        sparse = {id(p) for p in self.sparse_parameters()}
        return [p for p in self.parameters() if id(p) not in sparse]

    def forward(self, batch: Batch) -> Tensor:
        m = self.config.model
        with record_function("ctx.tokens"):
            x = self.ctx_tokens(batch)  # (B, n_ctx, d)
        states: dict[str, _StreamState] = {}
        for name, embed in self.embed.items():
            with record_function(embed.key):
                stream = truncate(batch.streams[name], m.stream(name).max_len)
                states[name] = _StreamState(stream, batch.request_time, embed)
        summaries: dict[str, Tensor] = {}
        for site in self.sites:
            c, st = site.component, states.get(site.stream)
            module = (self.summaries if c == "summary" else getattr(self, c))[site.slot]
            with record_function(site.key):
                if c == "summary":
                    x_sum = module(x)  # (B, n_sum, d)
                elif c == "kvgen":
                    k, v = module(x_sum)  # (B, n_kv, H, Dh) each
                elif c == "pffn":
                    st.s = module(st.s, st.offsets, st.max_len, k, v)
                elif c == "swa":
                    st.s = module(st.s, st.offsets, st.max_len, st.dt, st.position, st.length)
                elif c == "hsp":
                    summaries[site.stream] = module(st.s, st.offsets, st.max_len)  # (B, n_tok, d)
                else:
                    x = module(torch.cat([x, *self._in_order(summaries)], dim=1))
        with record_function("head"):
            return self.head(x, self._in_order(summaries))

    def _in_order(self, summaries: dict[str, Tensor]) -> list[Tensor]:
        return [summaries[n] for n in self.config.stream_names if n in summaries]

    def loss(self, batch: Batch) -> Tensor:
        logits = self(batch)
        return nn.functional.binary_cross_entropy_with_logits(logits, batch.labels.to(logits.dtype))

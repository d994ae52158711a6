"""Training charts and tables: one colour per series everywhere, error rate in percent, texts per language."""

from core import i18n
from core.store.records import EpochRow, LRFinderResult
from core.train import curves

EPOCHS = [
    EpochRow(stage=0, epoch=0, train_loss=1.2, valid_loss=1.0, error_rate=0.439, seconds=3.0),
    EpochRow(
        stage=0, epoch=1, train_loss=0.9, valid_loss=0.8, error_rate=0.339, seconds=3.0, metrics={"accuracy": 0.661}
    ),
]


def colours(fig) -> dict[str, str]:
    return {trace.name: trace.line.color for trace in fig.data}


def test_live_and_stored_loss_charts_draw_each_series_in_one_colour():
    """The live chart has a batch-loss trace first: plotly's automatic colours shifted by one trace."""
    stored = curves.loss_figure(EPOCHS)
    live = curves.loss_figure(EPOCHS, batches=[(0.5, 1.3), (1.0, 1.1)])
    assert [t.name for t in live.data] == ["batch loss (smoothed)", "train_loss", "valid_loss", "error_rate"]
    series = {"train_loss", "valid_loss", "error_rate"}
    assert {k: v for k, v in colours(live).items() if k in series} == colours(stored)
    assert len(set(colours(stored).values())) == 3 and None not in colours(stored).values()


def test_error_rate_axes_are_percent():
    """Ticks like 0.439 read as a loss; error rate is a share of images: 44%."""
    right = curves.loss_figure(EPOCHS).layout.yaxis2
    assert right.tickformat.endswith("%") and right.rangemode == "tozero"
    assert right.tickmode == "auto"  # round ticks of its own, not synced to the loss axis's gridlines
    assert curves.loss_figure(EPOCHS).layout.xaxis.dtick == 1  # whole epochs
    assert curves.loss_figure(EPOCHS).data[2].hovertemplate == "%{y:.1%}"
    overlay = curves.runs_figure([("run a", EPOCHS)], "error_rate")
    assert overlay.layout.yaxis.tickformat.endswith("%")
    assert not curves.runs_figure([("run a", EPOCHS)], "valid_loss").layout.yaxis.tickformat  # losses stay numbers


def test_charts_and_table_read_the_rows_values():
    assert list(curves.loss_figure(EPOCHS).data[0].y) == [1.2, 0.9]  # train_loss
    assert list(curves.runs_figure([("run a", EPOCHS)], "error_rate").data[0].y) == [0.439, 0.339]
    assert list(curves.runs_figure([("run a", EPOCHS)], "accuracy").data[0].y) == [None, 0.661]  # another metric
    table = curves.epochs_table(EPOCHS)
    assert table["epoch"].tolist() == [1, 2] and table["valid_loss"].tolist() == [1.0, 0.8]  # numbered from 1


def test_chart_and_table_texts_follow_the_language():
    finder = LRFinderResult([1e-5, 1e-4], [2.0, 1.5], {"valley": 1e-4}, {"valley": (1e-4, 1.5)}, "frozen", fast=True)
    try:
        i18n.set_language("zh")
        fig = curves.loss_figure(EPOCHS, batches=[(0.5, 1.3)])
        assert (fig.layout.xaxis.title.text, fig.layout.yaxis.title.text, fig.layout.yaxis2.title.text) == (
            "轮（所有阶段）",
            "损失",
            "错误率",
        )
        assert fig.data[0].name == "批次损失（平滑）"
        lr = curves.lr_finder_figure([finder])
        assert lr.data[0].name == "第 1 次：冻结（缓存特征）"
        assert lr.layout.xaxis.title.text == "学习率（对数刻度）"
        assert list(curves.epochs_table(EPOCHS).columns) == ["阶段", "轮", "train_loss", "valid_loss", "error_rate",
                                                            "用时（秒）"]  # fmt: skip
    finally:
        i18n.set_language("en")
    assert list(curves.epochs_table(EPOCHS).columns) == ["stage", "epoch", "train_loss", "valid_loss", "error_rate",
                                                        "time (s)"]  # fmt: skip

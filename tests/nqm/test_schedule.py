import numpy as np
import pytest

from nqm.errors import NQMInputError
from nqm.schedule import Schedule, parse_schedule


def test_shapes():
    T = 10
    np.testing.assert_allclose(Schedule("constant").multipliers(T), 1.0)
    lin = Schedule("linear", final=0.1).multipliers(T)
    assert lin[0] == 1.0 and lin[-1] == pytest.approx(0.1) and np.all(np.diff(lin) < 0)
    cos = Schedule("cosine").multipliers(T + 1)
    assert cos[0] == 1.0 and cos[-1] == pytest.approx(0.0) and cos[5] == pytest.approx(0.5)
    pw = parse_schedule("piecewise:0.5=0.1,0.8=0.01").multipliers(T)
    np.testing.assert_allclose(pw, [1] * 5 + [0.1] * 3 + [0.01] * 2)
    wu = Schedule("constant", warmup=0.3).multipliers(T)
    np.testing.assert_allclose(wu[:3], [1 / 3, 2 / 3, 1.0])
    # past the horizon the last value is kept
    assert Schedule("linear", final=0.2).multipliers(10, 20)[-1] == pytest.approx(0.2)


@pytest.mark.parametrize("text,msg", [("exp", "schedule must be one of"),
                                      ("piecewise:0.5", "fraction=factor"),
                                      ("piecewise:0.9=1,0.5=2", "increasing"),
                                      ("linear:0.5=1", "takes no")])
def test_bad_schedules(text, msg):
    with pytest.raises(NQMInputError, match=msg):
        parse_schedule(text)

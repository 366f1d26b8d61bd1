"""Which table a relation's WAL counts for, and the figures per item."""
import pytest

from bench.wal import owning_tables, per_table


def relation(oid, filenode, name, toast=0, indexed=None):
    return {"oid": oid, "filenode": filenode, "name": name, "reltoastrelid": toast, "indrelid": indexed}


def test_indexes_toast_and_toast_indexes_count_for_their_table():
    tables = owning_tables([
        relation(1, 101, "s.cases", toast=3), relation(2, 102, "s.cases_pkey", indexed=1),
        relation(3, 103, "pg_toast.pg_toast_1"), relation(4, 104, "pg_toast.pg_toast_1_index", indexed=3),
        relation(5, 105, "s.inbox")])
    assert tables == {101: "s.cases", 102: "s.cases", 103: "s.cases", 104: "s.cases", 105: "s.inbox"}


def test_figures_per_item_keep_the_tables_that_wrote_most_and_put_the_rest_in_other():
    tables = {1: "a", 2: "a", 3: "b", 4: "c"}
    figures = per_table(10 * 1024 * 100, {1: 3 * 1024 * 100, 2: 1024 * 100, 3: 2 * 1024 * 100, 4: 1024 * 100,
                                          99: 1024 * 100}, tables, items=100, top=2)
    assert figures["kb_per_item"] == 10
    assert figures["by_table_kb_per_item"] == {"a": 4, "b": 2}
    assert figures["other_kb_per_item"] == 4  # c, a relation of no known table, and what no relation wrote
    with pytest.raises(ValueError):
        per_table(1, {}, {}, items=0)

"""What a service built before it starts serving is left out of later garbage collections, and a batch's
short-lived objects are not walked again and again by young collections."""
import gc

from warden.runtime.runner import YOUNG_GENERATION_OBJECTS, settle_heap


def test_objects_built_at_startup_are_not_walked_by_later_collections():
    built_at_startup = [[n] for n in range(1000)]
    threshold = gc.get_threshold()
    try:
        settle_heap()
        later = [[n] for n in range(10)]
        full_collection_walks = {id(o) for o in gc.get_objects()}
        assert id(later) in full_collection_walks
        assert id(built_at_startup) not in full_collection_walks
        assert not any(id(inner) in full_collection_walks for inner in built_at_startup)
    finally:
        gc.unfreeze()
        gc.set_threshold(*threshold)


def test_a_batch_worth_of_live_objects_is_not_collected_young_until_the_threshold():
    threshold = gc.get_threshold()
    try:
        settle_heap()
        young_collections = gc.get_stats()[0]["collections"]
        batch = [{"event": n, "row": [n]} for n in range(YOUNG_GENERATION_OBJECTS // 3)]  # 2 containers each
        assert gc.get_stats()[0]["collections"] == young_collections
        batch += [{"event": n, "row": [n]} for n in range(YOUNG_GENERATION_OBJECTS // 2)]
        assert gc.get_stats()[0]["collections"] > young_collections  # garbage is still collected
    finally:
        gc.unfreeze()
        gc.set_threshold(*threshold)

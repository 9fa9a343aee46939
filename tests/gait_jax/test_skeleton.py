"""The canonical skeleton, its regions and joint sets, and the layouts onto it."""

import numpy as np
import pytest

from gait_jax import skeleton


def test_canonical_skeleton_is_the_azure_kinect_sdk_order_and_tree():
  assert skeleton.NUM_JOINTS == 32
  assert skeleton.JOINTS[:4] == ("PELVIS", "SPINE_NAVEL", "SPINE_CHEST", "NECK")
  assert skeleton.JOINTS[26:] == ("HEAD", "NOSE", "EYE_LEFT", "EAR_LEFT", "EYE_RIGHT",
                                  "EAR_RIGHT")
  parents = skeleton.PARENTS
  assert [j for j, p in enumerate(parents) if p < 0] == [0]
  # Every joint reaches the pelvis: the hierarchy is one tree.
  for j in range(32):
    seen = set()
    while j != 0:
      assert j not in seen
      seen.add(j)
      j = parents[j]
  name = lambda j: skeleton.JOINTS[skeleton.PARENTS[skeleton.JOINT_INDEX[j]]]
  assert name("THUMB_LEFT") == "WRIST_LEFT" and name("HANDTIP_RIGHT") == "HAND_RIGHT"
  assert name("CLAVICLE_LEFT") == "SPINE_CHEST" and name("EAR_RIGHT") == "HEAD"


def test_regions_and_default_joint_set():
  regions = skeleton.REGIONS
  assert set(regions) == {"head", "torso", "left_arm", "right_arm", "left_leg",
                          "right_leg", "hands"}
  assert sorted(sum(regions.values(), ())) == sorted(skeleton.JOINTS)
  default = skeleton.JOINT_SETS["default26"]
  assert len(default) == 26 and not set(default) & set(regions["hands"])
  np.testing.assert_array_equal(skeleton.joint_indices(["NECK", "PELVIS"]), [3, 0])
  with pytest.raises(ValueError, match="unknown joint names"):
    skeleton.joint_indices(["KNEE"])


@pytest.mark.parametrize("layout, joints, missing", [
    ("kinect_v2", 25, {"CLAVICLE_LEFT", "CLAVICLE_RIGHT", "NOSE", "EYE_LEFT", "EAR_LEFT",
                       "EYE_RIGHT", "EAR_RIGHT"}),
    ("kinect_v1", 20, {"NECK", "CLAVICLE_LEFT", "CLAVICLE_RIGHT", "NOSE", "EYE_LEFT",
                       "EAR_LEFT", "EYE_RIGHT", "EAR_RIGHT", "HANDTIP_LEFT", "THUMB_LEFT",
                       "HANDTIP_RIGHT", "THUMB_RIGHT"}),
])
def test_layouts_map_onto_canonical_and_mark_missing(layout, joints, missing):
  lay = skeleton.get_layout(layout)
  assert lay.num_joints == joints
  rng = np.random.default_rng(0)
  src = rng.normal(size=(5, joints, 3)).astype(np.float32)
  pos, conf, present = lay.to_canonical(src, np.ones((5, joints), np.float32))
  assert {skeleton.JOINTS[j] for j in np.flatnonzero(~present)} == missing
  assert np.isnan(pos[:, ~present]).all() and (conf[:, ~present] == 0).all()
  # Kinect camera space (x left, y up) → canonical (x right, y down), z unchanged.
  first = skeleton.JOINT_INDEX[lay.canonical[0]]
  np.testing.assert_allclose(pos[:, first], src[:, 0] * [-1, -1, 1])
  if layout == "kinect_v1":
    assert lay.joints[2] == "ShoulderCenter" and lay.canonical[2] == "SPINE_CHEST"
  with pytest.raises(ValueError, match=f"expects positions \\[T, {joints}, 3\\]"):
    lay.to_canonical(src[:, :-1], np.ones((5, joints - 1)))


def test_unknown_layout_names_the_known_ones():
  with pytest.raises(ValueError, match="kinect_v1"):
    skeleton.get_layout("openpose")

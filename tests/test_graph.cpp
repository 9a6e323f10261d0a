#include <gtest/gtest.h>

#include "ir/graph.h"

using namespace mixq;

TEST(Graph, SortOrdersNodesTopologically) {
  Graph g;
  int x = g.add_value("x");
  int a = g.add_value("a");
  int b = g.add_value("b");
  g.inputs = {x};
  g.outputs = {b};
  g.nodes.push_back(Node{"second", "Relu", "", {a}, {b}, {}});
  g.nodes.push_back(Node{"first", "Relu", "", {x}, {a}, {}});
  g.sort();
  EXPECT_EQ(g.nodes[0].name, "first");
  EXPECT_EQ(g.values[b].producer, 1);
}

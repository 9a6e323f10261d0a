# One static library per folder of src/, declared bottom-up with the modules it may use.
#
# A module compiles against an include view: a folder in the build tree holding links to its own
# folder and to the folders of the modules below it, and nothing else. An #include of a module
# that is not below it therefore fails to compile, so the layering is kept by the build rather
# than by review. The declarations also write the module graph (module-graph.mmd) that the
# README's architecture section shows.

set(MIXQ_MODULES "")
set(MIXQ_MODULE_GRAPH "graph BT\n")
set(MIXQ_VIEW_ROOT ${PROJECT_BINARY_DIR}/include-views)

# mixq_module(NAME [SHARED] [DEPS module...] [LIBS target...])
# SHARED: a shared library holding the modules below it privately (the public API's library).
function(mixq_module name)
  cmake_parse_arguments(M "SHARED" "" "DEPS;LIBS" ${ARGN})
  file(GLOB sources CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/src/${name}/*.cpp)
  if(M_SHARED)
    add_library(mixq_${name} SHARED ${sources})
    set(scope PRIVATE)
  else()
    add_library(mixq_${name} STATIC ${sources})
    set_target_properties(mixq_${name} PROPERTIES POSITION_INDEPENDENT_CODE ON)
    set(scope PUBLIC)
  endif()

  set(closure ${name})
  set(dep_targets "")
  foreach(dep ${M_DEPS})
    if(NOT TARGET mixq_${dep})
      message(FATAL_ERROR "module ${name}: '${dep}' must be declared before the modules using it")
    endif()
    get_property(dep_closure GLOBAL PROPERTY MIXQ_CLOSURE_${dep})
    list(APPEND closure ${dep_closure})
    list(APPEND dep_targets mixq_${dep})
    string(APPEND MIXQ_MODULE_GRAPH "  ${name} --> ${dep}\n")
  endforeach()
  list(REMOVE_DUPLICATES closure)
  list(SORT closure)
  set_property(GLOBAL PROPERTY MIXQ_CLOSURE_${name} ${closure})

  set(view ${MIXQ_VIEW_ROOT}/${name})
  file(REMOVE_RECURSE ${view})
  file(MAKE_DIRECTORY ${view})
  foreach(module ${closure})
    file(CREATE_LINK ${PROJECT_SOURCE_DIR}/src/${module} ${view}/${module} SYMBOLIC)
  endforeach()
  target_include_directories(mixq_${name} PRIVATE ${view})
  target_link_libraries(mixq_${name} ${scope} ${dep_targets} ${M_LIBS})

  if(NOT M_DEPS)
    string(APPEND MIXQ_MODULE_GRAPH "  ${name}\n")
  endif()
  set(MIXQ_MODULE_GRAPH "${MIXQ_MODULE_GRAPH}" PARENT_SCOPE)
  set(MIXQ_MODULES ${MIXQ_MODULES} ${name} PARENT_SCOPE)
endfunction()

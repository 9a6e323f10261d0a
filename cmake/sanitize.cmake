# MIXQ_SANITIZE=ON: AddressSanitizer + UndefinedBehaviorSanitizer on every target (library, CLI,
# tests). Any undefined behaviour aborts (no recovery) so a finding fails the test that hit it;
# frame pointers keep the reported stacks complete. With clang, fuzz/ adds the libFuzzer targets.
option(MIXQ_SANITIZE "Build everything with AddressSanitizer and UndefinedBehaviorSanitizer" OFF)

if(MIXQ_SANITIZE)
  add_compile_options(-fsanitize=address,undefined -fno-sanitize-recover=undefined
                      -fno-omit-frame-pointer)
  add_link_options(-fsanitize=address,undefined)
  # The instrumented loops cannot be vectorized, and clang warns at every `omp simd` hint it
  # cannot honour; the hints are only about speed.
  if(CMAKE_CXX_COMPILER_ID STREQUAL "Clang")
    add_compile_options(-Wno-pass-failed)
  endif()
endif()

# Dense linear algebra (Eigen: input grams, Cholesky factors) takes minutes at the sanitizer
# build's -O1 where -O2 takes seconds; these files stay instrumented, only better optimised.
if(MIXQ_SANITIZE)
  set_source_files_properties(${PROJECT_SOURCE_DIR}/src/quant/gptq.cpp
                              ${PROJECT_SOURCE_DIR}/src/quant/input_gram.cpp
                              ${PROJECT_SOURCE_DIR}/src/quant/learned_rounding.cpp
                              PROPERTIES COMPILE_OPTIONS -O2)
endif()

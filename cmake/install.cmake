# `cmake --install build --prefix P`: the CLI, libmixq.so with its public headers, the data files,
# and what finds them: a CMake package (find_package(mixq) gives mixq::mixq) and a pkg-config file.
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

install(TARGETS mixq RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
install(TARGETS mixq_api EXPORT mixqTargets LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR})
install(DIRECTORY include/mixq DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
foreach(f ${MIXQ_DATA_FILES})
  get_filename_component(dir ${f} DIRECTORY)
  install(FILES ${f} DESTINATION ${CMAKE_INSTALL_DATADIR}/mixq/${dir})
endforeach()

set(MIXQ_CMAKE_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/mixq)
install(EXPORT mixqTargets NAMESPACE mixq:: DESTINATION ${MIXQ_CMAKE_DIR})
configure_package_config_file(cmake/mixqConfig.cmake.in ${PROJECT_BINARY_DIR}/mixqConfig.cmake
                              INSTALL_DESTINATION ${MIXQ_CMAKE_DIR})
write_basic_package_version_file(${PROJECT_BINARY_DIR}/mixqConfigVersion.cmake
                                 COMPATIBILITY SameMinorVersion)
install(FILES ${PROJECT_BINARY_DIR}/mixqConfig.cmake ${PROJECT_BINARY_DIR}/mixqConfigVersion.cmake
        DESTINATION ${MIXQ_CMAKE_DIR})

# The prefix relative to the .pc file, so the installed tree can move (libdir may be multiarch).
file(RELATIVE_PATH MIXQ_PC_TO_PREFIX /${CMAKE_INSTALL_LIBDIR}/pkgconfig /)
string(REGEX REPLACE "/$" "" MIXQ_PC_TO_PREFIX "${MIXQ_PC_TO_PREFIX}")
configure_file(cmake/mixq.pc.in ${PROJECT_BINARY_DIR}/mixq.pc @ONLY)
install(FILES ${PROJECT_BINARY_DIR}/mixq.pc DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)
